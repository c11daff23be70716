# Builds the kernel modules bentofs-c/bentofs.ko and logfs/kmod/logfs.ko against KDIR
# (default: the installed Debian cloud kernel headers). Userspace tools are built by cargo.
#
#   make                  both modules
#   make upgrade-modules  also logfs/kmod/logfs_v2.ko (cargo feature v2: version <version>+v2, and a
#                         `trusted.logfs.stats` line "upgrades N"), and the deliberately bad
#                         logfs_badstate.ko (bad-state) and logfs_badformat.ko (bad-format), to
#                         live-upgrade to and from (docs/upgrade.md), and logfs_panic.ko
#                         (panic-trigger: trusted.logfs.panic makes a mount panic, for the panic
#                         containment test; never installed)
#   make deb              Debian packages in target/debian/: logfs-tools (the tools, man pages,
#                         completions, udev helper) and logfs-dkms (the module sources for DKMS)
#   make clean
#   make install          the tools to /usr/sbin (cargo build --release), the udev helper
#                         logfs_id and its rule to /usr/lib/udev, the modules to
#                         /lib/modules/KREL/updates, then depmod; DESTDIR= stages instead
#   make uninstall        removes what install put there
#
# The Rust half of logfs.ko is a static library for x86_64-unknown-none (a kernel-ready target:
# kernel code model, no red zone, soft float). core and alloc are rebuilt with the kernel's
# code-generation flags (-Zbuild-std, which needs rust-src and RUSTC_BOOTSTRAP=1, as the kernel's
# own Rust support does): the prebuilt ones call memcpy and friends through the GOT, which the
# module loader rejects. `ld -r -u logfs_rust_ops` then keeps only what the operation table
# reaches, and Kbuild links that object into the module.

KREL ?= $(shell bash -c '. tests/vm/lib.sh && vm_krel' 2>/dev/null)
KDIR ?= /usr/src/linux-headers-$(KREL)
LOGFS_VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

RUST_TARGET := x86_64-unknown-none
# One target directory per kernel: the flags differ (see RUST_FLAGS), so switching would rebuild.
RUST_TARGET_DIR := $(CURDIR)/target/kmod/$(KREL)
# Largest stack frame a Rust function of the module may take (kernel stacks are 16 KiB).
RUST_MAX_FRAME := 2048
RUST_LIB := $(RUST_TARGET_DIR)/$(RUST_TARGET)/release/liblogfs_kmod.a
RUST_OBJ := logfs/kmod/logfs_rust.o_shipped
# Match the kernel's mitigations (retpolines, return thunks) so objtool accepts the object.
RUST_FLAGS := -C relocation-model=static -C relro-level=off -C force-unwind-tables=no \
	-C jump-tables=no -Zretpoline-external-thunk -Zfunction-return=thunk-extern \
	-Zindirect-branch-cs-prefix
# And what the kernel's configuration asks of every object, as its own Rust support sets it
# (arch/x86/Makefile): ENDBR landing pads under IBT (6.12's kernels), function padding for
# call-depth tracking.
kconfig = $(shell sed -n 's/^$(1)=//p' $(KDIR)/.config 2>/dev/null)
comma := ,
RUST_FLAGS += $(if $(call kconfig,CONFIG_X86_KERNEL_IBT),-Zcf-protection=branch)
RUST_FLAGS += $(if $(call kconfig,CONFIG_CALL_PADDING),-Zpatchable-function-entry=$\
	$(call kconfig,CONFIG_FUNCTION_PADDING_BYTES)$(comma)$(call kconfig,CONFIG_FUNCTION_PADDING_BYTES))

# The Rust object reaches the kernel only through bentofs's ABI (bento_abi.h) and the two
# mitigation thunks, so one build serves every kernel built with the same flags: the DKMS package
# ships one per flag set (logfs/kmod/prebuilt/, made by `make deb`; .o_shipped, which Kbuild's
# clean leaves alone) and needs no Rust toolchain.
RUST_FLAGS_ID := $(shell printf '%s' '$(RUST_FLAGS)' | sha256sum | cut -c1-12)
RUST_PREBUILT_DIR := logfs/kmod/prebuilt
RUST_PREBUILT := $(RUST_PREBUILT_DIR)/logfs_rust-$(RUST_FLAGS_ID).o_shipped

KBUILD_ARGS := -C $(KDIR) M=$(CURDIR) LOGFS_VERSION=$(LOGFS_VERSION) CONFIG_DEBUG_INFO_BTF_MODULES=

# The upgrade builds: module logfs_<variant>.ko from the cargo feature feature_<variant>, each in
# its own target directory (switching features in one would rebuild and relink every time).
UPGRADE_VARIANTS := v2 badstate badformat panic
feature_v2 := v2
feature_badstate := bad-state
feature_badformat := bad-format
feature_panic := panic-trigger
UPGRADE_OBJS := $(foreach v,$(UPGRADE_VARIANTS),logfs/kmod/logfs_rust_$(v).o_shipped)

all: modules

modules: $(RUST_OBJ)
	$(MAKE) $(KBUILD_ARGS) modules

upgrade-modules: $(RUST_OBJ) $(UPGRADE_OBJS)
	$(MAKE) $(KBUILD_ARGS) LOGFS_UPGRADE_MODULES=m modules

# rust_lib TARGET-DIR CARGO-FEATURES
define rust_lib
	cd logfs/kmod && RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(RUST_FLAGS)" cargo build --quiet --release \
		--target $(RUST_TARGET) -Zbuild-std=core,alloc --target-dir $(1) $(2)
endef

# rust_obj LIB: the part of the static library the operation table reaches, as $@
define rust_obj
	ld -r --gc-sections -u logfs_rust_ops -o $@.tmp $(1)
	objcopy --remove-section=.llvmbc --remove-section=.llvmcmd --remove-section=.comment $@.tmp
	@if readelf -rW $@.tmp | grep -q GOTPCREL; then \
		echo "$@: GOT relocations, which the module loader rejects" >&2; exit 1; fi
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@
endef

$(RUST_LIB): FORCE
	$(call rust_lib,$(RUST_TARGET_DIR),)

ifneq ($(wildcard $(RUST_PREBUILT_DIR)),)
# A DKMS tree: no Rust sources, only the prebuilt objects.
$(RUST_OBJ): FORCE
	@test -f $(RUST_PREBUILT) || { \
		echo "logfs: no prebuilt Rust object for $(KREL): its code-generation flags" \
			"($(RUST_FLAGS)) match none of those this package was built for:" >&2; \
		cat $(RUST_PREBUILT_DIR)/*.flags >&2; \
		echo "logfs: a logfs-dkms built on this kernel's headers (make deb) supports it" >&2; \
		exit 1; }
	cp $(RUST_PREBUILT) $@
else
# The panic ratchet: the calls of panic entry points in logfs's and the Bento crates' code may
# not exceed the committed number (in the kernel a panic is a BUG() with locks held). An object
# over it is removed, so the next make checks again. Relinked every time (rust_obj keeps an
# identical object's time): a library of another KREL may be older than the object.
$(RUST_OBJ): $(RUST_LIB) FORCE
	$(call rust_obj,$<)
	@tests/kmod/panic-sites.py $@ logfs/kmod/panic-sites.max || { rm -f $@; exit 1; }
	@tests/kmod/stack-frames.py -n 0 $@ $(RUST_MAX_FRAME) || { rm -f $@; exit 1; }
endif

logfs/kmod/logfs_rust_%.o_shipped: FORCE
	$(call rust_lib,$(RUST_TARGET_DIR)-$*,--features $(feature_$*))
	$(call rust_obj,$(RUST_TARGET_DIR)-$*/$(RUST_TARGET)/release/liblogfs_kmod.a)

TOOLS := mkfs.logfs fsck.logfs logfs-fuse
SBINDIR := $(DESTDIR)/usr/sbin
MODDIR := $(DESTDIR)/lib/modules/$(KREL)/updates
UDEVDIR := $(DESTDIR)/usr/lib/udev

tools:
	cargo build --release --quiet

# After depmod, mount -t bento loads bentofs.ko (alias fs-bento) and fs=logfs logfs.ko (alias
# bento-fs-logfs): no insmod.
install: modules share
	install -D -m 755 -t $(SBINDIR) $(addprefix target/release/,$(TOOLS))
	install -D -m 755 -t $(UDEVDIR) target/release/logfs_id
	install -D -m 644 -t $(UDEVDIR)/rules.d fsck/udev/59-logfs.rules
	install -D -m 644 -t $(MODDIR) bentofs-c/bentofs.ko logfs/kmod/logfs.ko
	cd $(SHARE) && find . -type f -exec install -D -m 644 {} $(abspath $(SHAREDIR))/{} \;
	$(if $(DESTDIR),,depmod -a $(KREL))

uninstall:
	rm -f $(addprefix $(SBINDIR)/,$(TOOLS)) $(MODDIR)/bentofs.ko $(MODDIR)/logfs.ko
	rm -f $(UDEVDIR)/logfs_id $(UDEVDIR)/rules.d/59-logfs.rules
	rm -f $(addprefix $(SHAREDIR)/,$(SHARE_FILES))
	$(if $(DESTDIR),,depmod -a $(KREL))

# Man pages and shell completions, from the tools themselves (`--generate`) and docs/man.
SHARE := target/package/share
SHAREDIR := $(DESTDIR)/usr/share
SHARE_FILES := man/man5/logfs.5.gz $(foreach t,$(TOOLS),man/man8/$(t).8.gz \
	bash-completion/completions/$(t) zsh/vendor-completions/_$(t) fish/vendor_completions.d/$(t).fish)
share: tools
	rm -rf $(SHARE)
	mkdir -p $(SHARE)/man/man5 $(SHARE)/man/man8 $(SHARE)/bash-completion/completions \
		$(SHARE)/zsh/vendor-completions $(SHARE)/fish/vendor_completions.d
	for t in $(TOOLS); do \
		target/release/$$t --generate man | gzip -9n >$(SHARE)/man/man8/$$t.8.gz && \
		target/release/$$t --generate complete-bash >$(SHARE)/bash-completion/completions/$$t && \
		target/release/$$t --generate complete-zsh >$(SHARE)/zsh/vendor-completions/_$$t && \
		target/release/$$t --generate complete-fish >$(SHARE)/fish/vendor_completions.d/$$t.fish \
		|| exit 1; done
	gzip -9n <docs/man/logfs.5 >$(SHARE)/man/man5/logfs.5.gz

# ---- Debian packages (cargo-deb): target/debian/logfs-tools_*.deb and logfs-dkms_*.deb -----------
# The DKMS package carries the C sources and one prebuilt Rust object per kernel line whose
# headers are installed here (DEB_KRELS: Debian 12's 6.1 and 6.12 cloud lines by default).
DEB_KRELS ?= $(foreach line,_ 6.12,$(shell VM_LINE=$(line:_=) bash -c '. tests/vm/lib.sh && vm_krel' 2>/dev/null))
DKMS_SRC := target/package/dkms/usr/src/logfs-$(LOGFS_VERSION)
DKMS_FILES := Makefile Kbuild bentofs-c/Kbuild bentofs-c/*.c bentofs-c/*.S bentofs-c/*.h bentofs-c/include \
	logfs/kmod/Kbuild logfs/kmod/logfs_main.c

# rust-prebuilt PREBUILT_OUT=DIR: the Rust object for KREL, named after its flags, and the flags.
rust-prebuilt: $(RUST_OBJ)
	install -D -m 644 $(RUST_OBJ) $(PREBUILT_OUT)/logfs_rust-$(RUST_FLAGS_ID).o_shipped
	echo "  $(RUST_FLAGS_ID) ($(KREL)): $(RUST_FLAGS)" >$(PREBUILT_OUT)/logfs_rust-$(RUST_FLAGS_ID).flags

deb: share
	@test -n "$(DEB_KRELS)" || { echo "make deb: no kernel headers (tests/setup.sh installs them)" >&2; exit 1; }
	rm -rf target/package/dkms && mkdir -p $(DKMS_SRC)
	git ls-files -z -- $(DKMS_FILES) | xargs -0 cp --parents -t $(DKMS_SRC)
	sed 's/@VERSION@/$(LOGFS_VERSION)/g' logfs/kmod/dkms/dkms.conf >$(DKMS_SRC)/dkms.conf
	$(foreach k,$(DEB_KRELS),$(MAKE) --no-print-directory KREL=$(k) \
		PREBUILT_OUT=$(CURDIR)/$(DKMS_SRC)/$(RUST_PREBUILT_DIR) rust-prebuilt &&) true
	cargo deb --no-build --quiet --strip -p mkfs-logfs -o target/debian/
	CARGO_TARGET_DIR=$(CURDIR)/target/kmod cargo deb --no-build --quiet --manifest-path logfs/kmod/Cargo.toml -o target/debian/

clean:
	$(MAKE) $(KBUILD_ARGS) LOGFS_UPGRADE_MODULES=m clean
	rm -f $(RUST_OBJ) $(UPGRADE_OBJS)

FORCE:
.PHONY: all modules upgrade-modules tools share install uninstall deb rust-prebuilt clean FORCE
