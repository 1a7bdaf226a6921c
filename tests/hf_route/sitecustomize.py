"""Loaded by a worker started with PYTHONPATH=tests/hf_route: huggingface_hub's https calls go to loopback.

InferenceClient posts to fixed hosts (router.huggingface.co); this swaps the HTTP client it
uses (`set_client_factory`) for one whose transport sends every https request to
`DAILIES_TEST_HF_ROUTE` + path, so the real client code runs against tests/hosted_servers.py.
"""

import os

_target = os.environ.get("DAILIES_TEST_HF_ROUTE")
if _target:
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import httpx as _httpx

    class _Loopback(_httpx.HTTPTransport):
        def handle_request(self, request):
            if request.url.scheme == "https":
                tail = request.url.raw_path.decode()
                request.url = _httpx.URL(_target + tail)
            return super().handle_request(request)

    set_client_factory(lambda: _httpx.Client(transport=_Loopback(), follow_redirects=True, timeout=None))
