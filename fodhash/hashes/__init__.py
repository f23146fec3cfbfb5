"""Hash values: their text forms, and the fakes and sentinels fodhash writes into sites."""
