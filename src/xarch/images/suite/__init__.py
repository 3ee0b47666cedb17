"""The pytest + testinfra suite that `invoke test-images` runs against helper images."""

#: Every container the suite starts carries this label, valued by the environment
#: variable RUN_ENV that test-images sets per run; test-images removes the run's
#: containers when it ends, however it ended (an interrupted pytest-xdist worker may
#: not get to run its fixtures' cleanup).
RUN_LABEL = "io.xarch.test-images.run"
RUN_ENV = "XARCH_TEST_IMAGES_RUN"
