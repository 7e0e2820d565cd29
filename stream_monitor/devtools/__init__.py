"""Development tools, outside the monitoring path: local brokers (``broker``), the end-to-end
load test and chaos suite behind ``stream-monitor bench`` (``bench``), and the simulated model
server of the demo (``simulator``)."""
