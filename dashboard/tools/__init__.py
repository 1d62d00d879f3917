"""Developer tools: the demo-data generator and the benchmarks. Nothing in the product imports
them except the first-run demo load of the app and the API on an empty embedded database."""
