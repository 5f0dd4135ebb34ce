"""The connection to Execlave's API: the pieces that talk to the platform with the API key."""
