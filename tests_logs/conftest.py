"""Cloud Logging checks of the revision under test (``[[logs]]``): one test per entry."""
