"""Dailies in three packages: `contract` (what both sides share: settings, Redis keys, the job
spec, media), `app` (the page, the JSON API, the collector, the dataset and the Hub publisher)
and `worker` (the function RQ runs, hosted polling, the local-model runtime). The families and
providers are declared in the top-level `backends/`. How they fit: docs/architecture.md."""
