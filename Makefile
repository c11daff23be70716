# Builds the kernel modules bentofs-c/bentofs.ko and logfs/kmod/logfs.ko against KDIR
# (default: the installed Debian cloud kernel headers). Userspace tools are built by cargo.
#
#   make            both modules
#   make clean
#
# The Rust half of logfs.ko is a static library for x86_64-unknown-none (a kernel-ready target:
# kernel code model, no red zone, soft float). core and alloc are rebuilt with the kernel's
# code-generation flags (-Zbuild-std, which needs rust-src and RUSTC_BOOTSTRAP=1, as the kernel's
# own Rust support does): the prebuilt ones call memcpy and friends through the GOT, which the
# module loader rejects. `ld -r -u logfs_rust_ops` then keeps only what the operation table
# reaches, and Kbuild links that object into the module.

KREL ?= $(shell bash -c '. tests/vm/lib.sh && vm_krel' 2>/dev/null)
KDIR ?= /usr/src/linux-headers-$(KREL)
LOGFS_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

RUST_TARGET := x86_64-unknown-none
RUST_TARGET_DIR := $(CURDIR)/target/kmod
RUST_LIB := $(RUST_TARGET_DIR)/$(RUST_TARGET)/release/liblogfs_kmod.a
RUST_OBJ := logfs/kmod/logfs_rust.o_shipped
# Match the kernel's mitigations (retpolines, return thunks) so objtool accepts the object.
RUST_FLAGS := -C relocation-model=static -C relro-level=off -C force-unwind-tables=no \
	-C jump-tables=no -Zretpoline-external-thunk -Zfunction-return=thunk-extern \
	-Zindirect-branch-cs-prefix

KBUILD_ARGS := -C $(KDIR) M=$(CURDIR) LOGFS_VERSION=$(LOGFS_VERSION) CONFIG_DEBUG_INFO_BTF_MODULES=

all: modules

modules: $(RUST_OBJ)
	$(MAKE) $(KBUILD_ARGS) modules

$(RUST_LIB): FORCE
	cd logfs/kmod && RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(RUST_FLAGS)" cargo build --quiet --release \
		--target $(RUST_TARGET) -Zbuild-std=core,alloc --target-dir $(RUST_TARGET_DIR)

$(RUST_OBJ): $(RUST_LIB)
	ld -r --gc-sections -u logfs_rust_ops -o $@.tmp $<
	objcopy --remove-section=.llvmbc --remove-section=.llvmcmd --remove-section=.comment $@.tmp
	@if readelf -rW $@.tmp | grep -q GOTPCREL; then \
		echo "$@: GOT relocations, which the module loader rejects" >&2; exit 1; fi
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@

clean:
	$(MAKE) $(KBUILD_ARGS) clean
	rm -f $(RUST_OBJ)

FORCE:
.PHONY: all modules clean FORCE
