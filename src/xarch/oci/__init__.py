"""Containers and registries: the one ``Engine`` over the docker SDK, the registry v2
client, image archives written by hand (platform-correct), and the embedded registry."""
