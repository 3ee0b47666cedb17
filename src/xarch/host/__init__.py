"""The host kernel side: binfmt_misc (parse, register, restore), the pinned QEMU emulator
binaries (fetch and verify), and installing them on the host."""
