"""Model-server integrations: the emitter SDK (``client``), KServe's payload logger over HTTP
(``ingest``), and the Open Inference Protocol v2 topics of Seldon Core 2 (``oip``, ``sources``)."""
