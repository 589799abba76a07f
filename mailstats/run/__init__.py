"""Running a study: the engine, its analysis workers, parallel accounts and the SQLite cache."""
