"""CI files xarch writes: the wheel workflow, the image-publishing workflow and the
scheduled pin check, for GitHub Actions and GitLab CI."""
