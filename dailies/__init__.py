"""Dailies core: configuration, jobs and queue operations, results, storage and gallery index."""
