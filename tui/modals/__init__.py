"""Modal screens, each typed by what it returns to the review screen."""
