"""The data: Caltech-101 found or downloaded (source), its images read (images), the deterministic split
(split), the published transforms (transforms), the resized-image cache (cache) and the loaders (loaders)."""
