"""The streaming runtime: a worker (``runtime.worker``) and its rooms on aiokafka."""
