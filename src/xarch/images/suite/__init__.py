"""The pytest + testinfra suite that `invoke test-images` runs against helper images."""
