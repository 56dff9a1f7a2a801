"""The rehearsal's fake of the Vertex AI SDK: the Model Registry and endpoints
(``models.py``), and the requests it answered (``recorded_requests.py``)."""
