"""Image names and labels: what every layer needs to find, check or publish an image.

Helper images are ``<registry>/<namespace>/<family>:<tag>-<arch>`` per target and
``...:<tag>`` for the family's multi-arch index; the binfmt installer's variants are
``<registry>/<namespace>/<installer image>:<tag>-<host arch>`` joined by ``...:<tag>``.

A :class:`PublishItem` is one per-arch image to push and the index it belongs to.
Both image builders describe what they publish with it, and publish/push.py pushes
a list of them, so helper images and the installer image follow one path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xarch.errors import BadInput
from xarch.model.arch import Arch
from xarch.model.config import INSTALLER_TARGET, Config, InstallerHost, InstallerSettings, Target

LABEL_PREFIX = "io.xarch"
L_INPUTS = f"{LABEL_PREFIX}.inputs-hash"
L_QEMU_VERSION = f"{LABEL_PREFIX}.qemu.version"
L_QEMU_SHA = f"{LABEL_PREFIX}.qemu.sha256"
L_QEMU_BINARY = f"{LABEL_PREFIX}.qemu.binary"
L_VERSION = f"{LABEL_PREFIX}.version"
L_TARGET = f"{LABEL_PREFIX}.target"
L_ARCH = f"{LABEL_PREFIX}.arch"
L_BASE_NAME = "org.opencontainers.image.base.name"
L_BASE_DIGEST = "org.opencontainers.image.base.digest"
L_REVISION = "org.opencontainers.image.revision"
L_BASE_REF = f"{LABEL_PREFIX}.base.ref"  # name@digest, what FROM used
L_BUSYBOX_VERSION = f"{LABEL_PREFIX}.busybox.version"
L_BUSYBOX_SHA = f"{LABEL_PREFIX}.busybox.sha256"
L_EMULATES = f"{LABEL_PREFIX}.installer.emulates"

Kind = Literal["helper", "installer"]


def helper_ref(config: Config, target: Target, tag: str) -> str:
    """The per-arch image reference of a target for one of its family's tags."""
    return f"{config.registry.image_name(target.family)}:{target.arch_tag(tag)}"


def installer_settings(config: Config) -> InstallerSettings:
    if config.installer is None:
        raise BadInput(f"{config.path}: the config has no `installer:` section")
    return config.installer


def variant_target(host: InstallerHost) -> str:
    """The name of one installer variant in summaries and reports: binfmt-installer-x86_64."""
    return f"{INSTALLER_TARGET}-{host.arch.name}"


def variant_refs(config: Config, host: InstallerHost) -> list[str]:
    inst = installer_settings(config)
    name = config.registry.image_name(inst.image)
    return [f"{name}:{tag}-{host.arch.name}" for tag in inst.tags]


def index_refs(config: Config) -> list[str]:
    inst = installer_settings(config)
    name = config.registry.image_name(inst.image)
    return [f"{name}:{tag}" for tag in inst.tags]


@dataclass(frozen=True, kw_only=True)
class PublishItem:
    """One per-arch image to push (``name:tag``) and the index it joins (``name:index_tag``)."""

    kind: Kind
    target: str  # a target's name, or an installer variant's (binfmt-installer-<arch>)
    arch: Arch
    family: str  # the index's family (a target family, or the installer image)
    name: str  # registry/namespace/family, no tag
    repository: str  # namespace/family (the registry API's repository)
    tag: str  # the per-arch tag
    index_tag: str  # the family tag this image is listed under

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def index_ref(self) -> str:
        return f"{self.name}:{self.index_tag}"

    @property
    def selector(self) -> str:
        """What ``--target`` selects this image with."""
        return INSTALLER_TARGET if self.kind == "installer" else self.target

    @property
    def build_command(self) -> str:
        """What to run when this image is not built."""
        return f"invoke build-images --target {self.selector}"


def helper_items(config: Config, targets: tuple[Target, ...]) -> list[PublishItem]:
    """The images of ``targets``, target by target, each for every family tag."""
    return [
        PublishItem(
            kind="helper",
            target=t.name,
            arch=t.arch,
            family=t.family,
            name=config.registry.image_name(t.family),
            repository=config.registry.repository(t.family),
            tag=t.arch_tag(tag),
            index_tag=tag,
        )
        for t in targets
        for tag in t.tags
    ]


def installer_items(config: Config) -> list[PublishItem]:
    """Every installer variant, variant by variant, for every installer tag."""
    inst = installer_settings(config)
    return [
        PublishItem(
            kind="installer",
            target=variant_target(host),
            arch=host.arch,
            family=inst.image,
            name=config.registry.image_name(inst.image),
            repository=config.registry.repository(inst.image),
            tag=f"{tag}-{host.arch.name}",
            index_tag=tag,
        )
        for host in inst.hosts
        for tag in inst.tags
    ]


@dataclass(frozen=True)
class Selection:
    """What a build or push of some names covers: targets, and the installer or not.

    The one place that decides whether the installer image goes with the targets
    (build-images, push-images and the report all follow it): when no name is given,
    or when ``binfmt-installer`` is named, and the config has an installer.
    """

    targets: tuple[Target, ...]
    installer: bool


def select(config: Config, names: list[str] | None) -> Selection:
    return Selection(targets=config.select(names), installer=config.wants_installer(names))


def publish_items(config: Config, selection: Selection) -> list[PublishItem]:
    """The images a push of ``selection`` publishes: targets first, then the installer."""
    items = helper_items(config, selection.targets)
    if selection.installer:
        items += installer_items(config)
    return items


def all_items(config: Config) -> list[PublishItem]:
    """Every image the config publishes (the members of every index), in config order."""
    return publish_items(
        config, Selection(targets=config.targets, installer=config.installer is not None)
    )


def push_key(config: Config) -> str:
    """The key of a config's push record in the report: ``<registry>/<namespace>``.

    The registry and namespace decide every image name a config publishes, so two
    configs with the same pair publish (and overwrite) the same images, and share a
    record; configs that publish elsewhere keep their own. The key does not depend
    on where the config file lies, so a report written by a CI job on one machine
    is found by ``pull-images`` on another.
    """
    reg = config.registry
    return f"{reg.address}/{reg.namespace}" if reg.namespace else reg.address
