"""Problem records, the embedded synthetic suite, decontamination and loaders."""
