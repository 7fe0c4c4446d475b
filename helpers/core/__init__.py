"""What every other layer stands on: errors, file operations (atomic writes), disk space and inode
preflight, measurement (timing, page-cache eviction, disk usage) and the one process pool every parallel
path shares. Nothing here knows a storage method, a codec or the report."""
