"""Who to read and how: the accounts file, provider profiles and OAuth2 sign-in."""
