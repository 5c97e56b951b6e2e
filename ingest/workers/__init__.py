"""The process pool for CPU-bound work: the pool and its time limits (`pool`), its fork server
(`forkserver`) and warm-up (`warm`), and the functions that run inside it (`tasks`). Nothing is
imported here, so that `ingest run` can start the fork server before its own imports."""
