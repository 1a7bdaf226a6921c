"""The app side: the JSON API and the page, jobs in and status out, the collector, the dataset,
its index and the Hub publisher. It never imports torch; it is the only side that may hold the
Hub write token."""
