# shellcheck shell=bash
# harness/lib.sh: what harness/realkernel and harness/patchedkernel share, sourced by both.
#
#   logging and options   log, die, need_arg, since
#   clean-up              harness_cleanup (EXIT trap: guests, background build, work directory)
#   host packages         ensure_host_packages, apt_update_once
#   Debian packages       private_apt (suites the machine's apt sources lack, through a private
#                         apt configuration), newest_package (by apt's version ordering)
#   the probe             start_probe_build, finish_probe_build (harness/build-probe), probe_has_flag
#   initramfs             init_* (pieces of the guest's /init), build_base_archive, pack_archive
#   QEMU                  make_scratch_disk, qemu_machine, boot_guest, the display devices
#   console checks        check_guest_exit, check_nodes, check_drm, extract_report,
#                         console_excerpt, console_tail, json_lines
#   guests in parallel    run_guest_pool
#
# The sourcing script sets HARNESS_NAME (log prefix), HARNESS_DIR and REPO_ROOT before sourcing,
# and these variables before it calls the functions that read them: apt_dir, install_deps,
# probe_bin, work_dir, keep_work, verbose, timeout_secs, guest_cpu, guest_smp, guest_mem,
# REQUIRED_NODES, probe_args, jobs.
# shellcheck disable=SC2034,SC2154 # variables shared with the sourcing script

readonly PROBE_TARGET=x86_64-unknown-linux-gnu
readonly MARK_BEGIN='===PFNGUARD-PROBE-BEGIN==='
readonly MARK_END='===PFNGUARD-PROBE-END==='

# The display devices: QEMU has one legacy VGA per machine, so the Cirrus VGA is the VGA
# and bochs-drm drives the bochs-display (the std VGA without its legacy VGA part); QXL is
# a secondary qxl device. The DRM drivers that must drive a card (names as in debugfs
# dri/N/name; "a|b" accepts either).
# shellcheck disable=SC2054 # commas belong to QEMU option values
readonly -a DISPLAY_DEVICES=(-vga cirrus -device bochs-display -device virtio-gpu-pci -device qxl)
readonly -a REQUIRED_DRM=(virtio_gpu bochs-drm "cirrus|cirrus-qemu" qxl vgem)

# Bump when what goes into an initramfs archive changes beyond the hashed inputs.
readonly INITRAMFS_FORMAT=3
# Cached initramfs parts (see build_base_archive).
initramfs_cache=${XDG_CACHE_HOME:-$HOME/.cache}/pfnguard/initramfs

# ---------------------------------------------------------------------------
# logging, options, time

log() { printf '[%s] %s\n' "$HARNESS_NAME" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs an argument (see --help)"; }

# Seconds since $1 (an $EPOCHREALTIME value), one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------
# clean-up

work_dir=
fetch_tmp=
build_pid=
declare -a cleanup_paths=()
declare -A worker_pids=()
# harness_cleanup: the EXIT trap. Guests still running (an interrupted run): each worker kills
# its own QEMU. The work directory goes unless --keep-work; a partial download and the paths
# in cleanup_paths always go.
# shellcheck disable=SC2317 # invoked through the EXIT trap
harness_cleanup() {
	local pid path
	for pid in "${worker_pids[@]}" $build_pid; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${worker_pids[@]}" $build_pid; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $work_dir && -d $work_dir ]]; then
		if ((keep_work)); then
			log "work directory kept: $work_dir"
		else
			rm -rf "$work_dir"
		fi
	fi
	# An interrupted download must not leave a partial tree in the cache.
	[[ -z $fetch_tmp ]] || rm -rf "$fetch_tmp"
	for path in "${cleanup_paths[@]}"; do
		rm -rf "$path"
	done
}

install_cleanup_traps() {
	trap harness_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# ---------------------------------------------------------------------------
# host packages

apt_updated=0
apt_update_once() {
	((apt_updated)) && return 0
	log "apt-get update"
	apt-get update -q >&2
	apt_updated=1
}

# ensure_host_packages PACKAGE...: apt-get install the ones not installed (unless --no-install).
ensure_host_packages() {
	local pkg missing=()
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' ||
			missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	((install_deps)) || die "missing host packages: ${missing[*]} (drop --no-install or install them)"
	[[ $EUID -eq 0 ]] || die "missing host packages: ${missing[*]} (run as root or install them)"
	apt_update_once
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# ---------------------------------------------------------------------------
# Debian packages

# private_apt [SUITE...]: sets apt_cfg to the options of a private apt configuration that
# reaches the suites through the machine's own Debian mirror (its sources name it), kept
# under $apt_dir/SUITE+SUITE... and never touching the machine's apt sources; empty (the
# machine's own configuration) without suites. Its package lists are refreshed after 12 hours.
apt_cfg=()
private_apt() {
	local suites=$* dir uri sec suite list
	apt_cfg=()
	[[ -n $suites ]] || return 0
	dir=$apt_dir/${suites// /+}
	uri=$(grep -hoE '(URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]*/debian/?([[:space:]]|$)' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
		grep -oE '[a-z]+://[^[:space:]]*/debian' | head -n1 || true)
	[[ -n $uri ]] || die "no Debian mirror in the machine's apt sources to reach ${suites}"
	sec=${uri%/debian}/debian-security
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/sources.list.d" "$dir/preferences.d"
	list=
	for suite in $suites; do
		if [[ $suite == *-security ]]; then
			list+="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $sec $suite main"$'\n'
		else
			list+="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main"$'\n'
		fi
	done
	printf '%s' "$list" >"$dir/sources.list"
	apt_cfg=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o "Dir::Etc::sourceparts=$dir/sources.list.d"
		-o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
		-o "Dir::Etc::preferencesparts=$dir/preferences.d" -o APT::Get::List-Cleanup=0)
	# apt's sandbox user cannot write into a root-owned private directory.
	[[ $EUID -ne 0 ]] || apt_cfg+=(-o APT::Sandbox::User=root)
	if [[ ! -f $dir/.updated ]] || [[ -n $(find "$dir/.updated" -mmin +720) ]]; then
		log "apt-get update ($suites, private configuration)"
		apt-get "${apt_cfg[@]}" update -q >&2 || die "apt-get update of $suites failed"
		touch "$dir/.updated"
	fi
}

# newest_package REGEX: prints "PACKAGE VERSION" of the newest candidate (by apt's version
# ordering) among the packages whose name matches the extended regex, or nothing; through
# the configuration private_apt set up (apt_cfg).
newest_package() {
	local regex=$1 name version best='' best_version='' dir
	local -a names opts=("${apt_cfg[@]}")
	# Without a binary cache (none in /var/cache/apt here) every apt-cache call parses all the
	# package lists again, seconds each; the machine's own configuration gets one in our cache
	# (a private configuration has its own). apt rebuilds it when the lists change.
	dir=$apt_dir/system
	if ((${#apt_cfg[@]} == 0)) && mkdir -p "$dir" 2>/dev/null && [[ -w $dir ]]; then
		opts=(-o "Dir::Cache::pkgcache=$dir/pkgcache.bin" -o "Dir::Cache::srcpkgcache=")
	fi
	mapfile -t names < <(apt-cache "${opts[@]}" search --names-only "$regex" | cut -d' ' -f1)
	((${#names[@]})) || return 0
	while read -r name version; do
		[[ -n $version && $version != "(none)" ]] || continue
		if [[ -z $best_version ]] || dpkg --compare-versions "$version" gt "$best_version"; then
			best=$name best_version=$version
		fi
	done < <(apt-cache "${opts[@]}" policy "${names[@]}" |
		awk '/^[^ ].*:$/ { sub(/:$/, ""); pkg = $0 } $1 == "Candidate:" { print pkg, $2 }')
	[[ -z $best ]] || echo "$best $best_version"
}

# ---------------------------------------------------------------------------
# the probe

is_static_executable() {
	# Scripts run under the guest's busybox sh; ELF files must not need a loader.
	[[ $(head -c2 "$1") == '#!' ]] && return 0
	! LC_ALL=C ldd "$1" 2>/dev/null | grep -q '=>'
}

# start_probe_build: unless --probe-bin names one, runs harness/build-probe in the background
# (it prints the cached binary's path; a cache hit takes no time), so that the build overlaps
# the downloads (and the kernel build). finish_probe_build waits for it and sets probe_bin
# and probe_built (given, cached or built).
probe_built=given
start_probe_build() {
	if [[ -n $probe_bin ]]; then
		[[ -f $probe_bin && -x $probe_bin ]] || die "--probe-bin $probe_bin: not an executable file"
		probe_bin=$(realpath "$probe_bin")
		log "probe: $probe_bin (given)"
		return 0
	fi
	log "probe: harness/build-probe (in the background; its output is shown on failure)"
	"$HARNESS_DIR/build-probe" >"$work_dir/probe-path" 2>"$work_dir/probe-build.log" &
	build_pid=$!
}

finish_probe_build() {
	if [[ -n $build_pid ]]; then
		local rc=0
		wait "$build_pid" || rc=$?
		build_pid=
		if ((rc != 0)); then
			tail -n 40 "$work_dir/probe-build.log" | sed 's/^/  | /' >&2
			die "harness/build-probe failed (status $rc)"
		fi
		probe_bin=$(<"$work_dir/probe-path")
		grep -q '^\[build-probe\] building' "$work_dir/probe-build.log" &&
			probe_built="built" || probe_built="cached"
		log "probe: $probe_bin ($probe_built)"
	fi
	is_static_executable "$probe_bin" || die "$probe_bin is dynamically linked; the guest has no libc"
}

# probe_has_flag FLAG: whether `$probe_bin probe --help` lists FLAG (a script stand-in takes
# every flag).
probe_has_flag() {
	[[ $(head -c2 "$probe_bin") == '#!' ]] && return 0
	"$probe_bin" probe --help 2>/dev/null | grep -q -E -e "^[[:space:]]+(-[a-zA-Z], )?$1([=[ ]|\$)"
}

# ---------------------------------------------------------------------------
# initramfs: /init is put together from these pieces (each prints shell text) and the
# harness's own. Lines starting with "pfnguard-harness:" are read back from the console.

# The start: busybox, the file systems, the console, say().
init_head() {
	cat <<'INIT'
#!/bin/sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export RUST_BACKTRACE=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mount -t debugfs debugfs /sys/kernel/debug || echo "pfnguard-harness: debugfs not mounted"

say() { echo "pfnguard-harness: $*"; }

rel=$(uname -r)
say "uname-r $rel"
cat /proc/version
say "cpu $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2)"
INIT
}

# Wait up to 5 s for the device nodes listed in /etc/pfnguard/nodes (shell globs).
init_wait_nodes() {
	cat <<'INIT'
# Probing is synchronous for these drivers; give stragglers a moment.
wait_nodes=$(tr '\n' ' ' </etc/pfnguard/nodes)
i=0
while [ $i -lt 50 ]; do
	ls $wait_nodes >/dev/null 2>&1 && break
	sleep 0.1
	i=$((i + 1))
done
sleep 0.2
INIT
}

# The device nodes, the DRM cards with their drivers, the V4L2 devices.
init_inventory() {
	cat <<'INIT'
echo "--- ls -l /dev/dri /dev/video* /dev/dma_heap /dev/udmabuf /dev/vd* /dev/kvm"
ls -l /dev/dri /dev/video* /dev/dma_heap /dev/udmabuf /dev/vd* /dev/kvm
echo "---"
say "nodes $(ls -d /dev/dri/* /dev/video* /dev/dma_heap/* /dev/udmabuf /dev/vd* /dev/kvm 2>/dev/null | tr '\n' ' ')"
for c in /sys/class/drm/card*; do
	[ -e "$c" ] || continue
	case ${c##*/} in *-*) continue ;; esac # connectors
	# The DRM driver name is in debugfs; the device's bus driver is a fallback.
	minor=$(cut -d: -f2 "$c/dev")
	drv=$(cut -d' ' -f1 "/sys/kernel/debug/dri/$minor/name" 2>/dev/null)
	[ -n "$drv" ] || drv=$(basename "$(readlink "$c/device/driver")" 2>/dev/null)
	say "drm ${c##*/} ${drv:-unknown}"
done
for v in /sys/class/video4linux/*; do
	[ -e "$v/name" ] || continue
	say "v4l ${v##*/} $(cat "$v/name")"
done
INIT
}

# The probe, with the arguments in /etc/pfnguard/probe-args; its report into /probe.out.
init_run_probe() {
	cat <<'INIT'
args=$(cat /etc/pfnguard/probe-args)
say "run /pfnguard probe --format json --odirect /dev/vda $args"
/pfnguard probe --format json --odirect /dev/vda $args >/probe.out
say "probe-exit $?"
INIT
}

# init_print_file FILE BEGIN END: FILE on the console between the marker lines BEGIN and END,
# with kernel messages held back meanwhile so that they do not interleave.
init_print_file() {
	cat <<INIT
printk=\$(cut -f1 /proc/sys/kernel/printk)
echo 1 >/proc/sys/kernel/printk
echo "$2"
cat $1
[ -z "\$(tail -c1 $1)" ] || echo
echo "$3"
echo "\$printk" >/proc/sys/kernel/printk
INIT
}

# pack_archive STAGE OUTPUT: the tree as a gzip'd newc archive, written atomically.
pack_archive() {
	(cd "$1" && find . -print0 | LC_ALL=C sort -z |
		cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -n -6 >"$2.tmp.$$"
	mv "$2.tmp.$$" "$2"
}

# writable_cache DIR: DIR if it can be created and written, else the work directory (the
# caches are never required).
writable_cache() {
	if mkdir -p "$1" 2>/dev/null && [[ -w $1 ]]; then echo "$1"; else echo "$work_dir"; fi
}

# build_base_archive NAME INIT_FUNC [SOURCE=DEST]...: sets base_archive, a gzip'd newc archive
# of static busybox, /pfnguard (probe_bin), /init (INIT_FUNC's output), /etc/pfnguard/nodes
# (REQUIRED_NODES), /etc/pfnguard/probe-args (probe_args) and each SOURCE file as DEST (mode
# kept). Cached under ~/.cache/pfnguard/initramfs as NAME-KEY.cpio.gz, KEY a hash of all of it.
build_base_archive() {
	local name=$1 init_func=$2 key dir stage busybox spec
	shift 2
	busybox=$(command -v busybox || true)
	[[ -n $busybox ]] || die "busybox not found (package busybox-static)"
	is_static_executable "$busybox" || die "$busybox is dynamically linked; install busybox-static"
	key=$({
		echo "format $INITRAMFS_FORMAT uid $EUID"
		sha256sum "$busybox" "$probe_bin" | cut -d' ' -f1
		"$init_func"
		printf '%s\n' "${REQUIRED_NODES[@]}" "${probe_args[*]}"
		for spec in "$@"; do
			echo "${spec#*=} $(sha256sum <"${spec%%=*}" | cut -d' ' -f1)"
		done
	} | sha256sum | cut -c1-32)
	dir=$(writable_cache "$initramfs_cache")
	base_archive=$dir/$name-$key.cpio.gz
	if [[ -s $base_archive ]]; then
		touch "$base_archive"
		log "initramfs $name: cached"
		return 0
	fi
	stage=$work_dir/initramfs-$name
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc/pfnguard}
	cp "$busybox" "$stage/bin/busybox"
	ln -s busybox "$stage/bin/sh"
	install -m 755 "$probe_bin" "$stage/pfnguard"
	"$init_func" >"$stage/init"
	chmod 755 "$stage/init"
	if [[ $EUID -eq 0 ]]; then
		# The kernel opens /dev/console for init before devtmpfs is mounted.
		mknod -m 600 "$stage/dev/console" c 5 1
		mknod -m 666 "$stage/dev/null" c 1 3
	fi
	printf '%s\n' "${REQUIRED_NODES[@]}" >"$stage/etc/pfnguard/nodes"
	echo "${probe_args[*]}" >"$stage/etc/pfnguard/probe-args"
	for spec in "$@"; do
		mkdir -p "$stage/$(dirname "${spec#*=}")"
		cp "${spec%%=*}" "$stage/${spec#*=}"
	done
	pack_archive "$stage" "$base_archive"
	rm -rf "$stage"
	# Keep the newest few archives of this name (one per probe binary).
	find "$dir" -maxdepth 1 -name "$name-*.cpio.gz" -printf '%T@ %p\n' 2>/dev/null |
		sort -rn | tail -n +4 | cut -d' ' -f2- | xargs -r rm -f
	log "initramfs $name: $(du -h "$base_archive" | cut -f1)"
}

# ---------------------------------------------------------------------------
# QEMU

# make_scratch_disk PATH: a 16 MiB raw disk for the O_DIRECT ops (the guest's /dev/vda); sets
# scratch_cache. cache=none opens it with O_DIRECT on the host too; file systems without
# O_DIRECT support fall back to writethrough.
make_scratch_disk() {
	rm -f "$1"
	truncate -s 16M "$1"
	scratch_cache=none
	dd if=/dev/zero of="$1" bs=4096 count=1 oflag=direct conv=notrunc status=none 2>/dev/null ||
		scratch_cache=writethrough
}

# qemu_machine KERNEL INITRD APPEND DISK [QEMU-ARGS...]: sets qemu to the command line of the
# machine both harnesses boot: TCG, guest_cpu/guest_smp/guest_mem, the display devices, the
# scratch disk as virtio-blk (make_scratch_disk first), the extra arguments, no display, and
# -no-reboot (a guest reset or reboot ends QEMU).
qemu_machine() {
	local kernel=$1 initrd=$2 append=$3 disk=$4
	shift 4
	# shellcheck disable=SC2054 # commas belong to QEMU option values
	qemu=(
		qemu-system-x86_64
		-accel tcg -cpu "$guest_cpu" -smp "$guest_smp" -m "$guest_mem"
		-kernel "$kernel" -initrd "$initrd"
		-append "$append"
		"${DISPLAY_DEVICES[@]}"
		-drive "file=$disk,format=raw,if=none,id=scratch,cache=$scratch_cache"
		-device virtio-blk-pci,drive=scratch
		"$@"
		-nographic -no-reboot
	)
}

# boot_guest RAW LOG: runs "${qemu[@]}" under a hard timeout (timeout_secs), the serial console
# into RAW, then LOG without carriage returns; sets qemu_rc and t_boot. With --verbose the
# console streams to stderr. A worker's EXIT trap kills qemu_pid.
qemu_pid=
boot_guest() {
	local raw=$1 log=$2 t0
	t0=$EPOCHREALTIME
	timeout --kill-after=10 "$timeout_secs" "${qemu[@]}" </dev/null >"$raw" 2>&1 &
	qemu_pid=$!
	if ((verbose)); then
		tail -n +1 -f --pid="$qemu_pid" "$raw" >&2 &
	fi
	qemu_rc=0
	wait "$qemu_pid" || qemu_rc=$?
	qemu_pid=
	t_boot=$(since "$t0")
	tr -d '\r' <"$raw" >"$log"
}

# The command line for harness.json: the work directory as $WORK/, then each further
# "PATH=NAME" argument's PATH as $NAME/.
qemu_cmdline_json() {
	local -a subst=("$work_dir/=\$WORK/" "$@")
	json_lines "${qemu[@]}" | jq -c --args '
		reduce ($ARGS.positional[] | capture("^(?<p>[^=]*)=(?<n>.*)$")) as $s
			(.; map(split($s.p) | join($s.n)))' "${subst[@]}"
}

# ---------------------------------------------------------------------------
# console checks: each appends to the caller's problems (and notes) arrays.

# console_excerpt LOG PATTERN [BEFORE [AFTER]]: console lines, with their numbers,
# around the first match of the extended regex PATTERN; the last lines when nothing
# matches.
console_excerpt() {
	local log=$1 pattern=$2 before=${3:-30} after=${4:-10} n
	n=$(grep -n -m1 -E -e "$pattern" "$log" | cut -d: -f1 || true)
	if [[ -n $n ]]; then
		echo "  --- ${log}:"
		awk -v lo=$((n - before)) -v hi=$((n + after)) 'NR >= lo && NR <= hi { printf "  %6d| %s\n", NR, $0 }' "$log"
	else
		console_tail "$log"
	fi
}

console_tail() {
	echo "  --- ${1} (last 40 lines):"
	tail -n 40 "$1" | sed 's/^/  | /'
}

# A JSON array of the arguments.
json_lines() {
	if (($#)); then printf '%s\n' "$@" | jq -R . | jq -s -c .; else echo '[]'; fi
}

# check_guest_exit LOG: QEMU's exit status (qemu_rc: the timeout, or a failure) and a kernel
# panic.
check_guest_exit() {
	local log=$1
	if ((qemu_rc == 124 || qemu_rc == 137)); then
		problems+=("guest did not power off within ${timeout_secs}s")
		console_tail "$log" >&2
	elif ((qemu_rc != 0)); then
		problems+=("qemu exited with status $qemu_rc")
		console_tail "$log" >&2
	fi
	if grep -q 'Kernel panic' "$log"; then
		problems+=("kernel panic")
		console_excerpt "$log" 'Kernel panic' 15 40 >&2
	fi
}

# check_nodes LOG [NODE...]: every node (REQUIRED_NODES without arguments) is in the
# console's "nodes" line; a NODE ending in * is a prefix.
check_nodes() {
	local log=$1 nodes name
	shift
	(($#)) || set -- "${REQUIRED_NODES[@]}"
	nodes=$(sed -n 's/^pfnguard-harness: nodes //p' "$log" | head -n1)
	for name in "$@"; do
		if [[ $name == *\* ]]; then
			[[ " $nodes " == *" ${name%\*}"* ]] || problems+=("no $name")
		else
			[[ " $nodes " == *" $name "* ]] || problems+=("no $name")
		fi
	done
}

# check_drm LOG: a DRM card driven by each of REQUIRED_DRM.
check_drm() {
	local log=$1 name
	for name in "${REQUIRED_DRM[@]}"; do
		grep -q -E "^pfnguard-harness: drm card[0-9]+ ($name)\$" "$log" && continue
		problems+=("no DRM card driven by $name")
		console_excerpt "$log" '^pfnguard-harness: drm |^pfnguard-harness: run ' 20 2 >&2
	done
}

# extract_between LOG BEGIN END OUT: the lines between the only BEGIN and END marker lines
# into OUT; fails (with "begin END-count") unless each marker is there exactly once.
extract_between() {
	local log=$1 begin=$2 end=$3 out=$4 nb ne
	nb=$(grep -c -x -F -e "$begin" "$log" || true)
	ne=$(grep -c -x -F -e "$end" "$log" || true)
	if ((nb == 1 && ne == 1)); then
		awk -v b="$begin" -v e="$end" '$0 == e { on = 0 } on { print } $0 == b { on = 1 }' "$log" >"$out"
		return 0
	fi
	echo "begin: $nb, end: $ne"
	return 1
}

# extract_report LOG DIR RELEASE PACKAGE VERSION: the probe's report between the markers into
# DIR/probe.json, checked to be a JSON object of the booted RELEASE, with kernel_package
# {name: PACKAGE, version: VERSION} added (for `pfnguard check` to name); sets probe_exit.
extract_report() {
	local log=$1 dir=$2 release=$3 pkg=$4 version=$5 json=$2/probe.json counts kr
	rm -f "$dir/probe.invalid.txt"
	if counts=$(extract_between "$log" "$MARK_BEGIN" "$MARK_END" "$json"); then
		if ! [[ -s $json ]] || ! jq -e 'type == "object"' "$json" >/dev/null 2>&1; then
			problems+=("probe output is not a JSON object")
			console_excerpt "$log" "^$MARK_BEGIN\$" 0 >&2
			mv "$json" "$dir/probe.invalid.txt"
		else
			kr=$(jq -r '.kernel_release // empty' "$json")
			[[ $kr == "$release" ]] ||
				problems+=("probe.json kernel_release '$kr' is not $release")
			jq --arg name "$pkg" --arg version "$version" \
				'. + {kernel_package: {name: $name, version: $version}}' "$json" >"$json.tmp" &&
				mv "$json.tmp" "$json"
		fi
	else
		rm -f "$json"
		problems+=("probe report markers missing ($counts)")
		[[ ${#problems[@]} -gt 1 ]] || console_excerpt "$log" '^pfnguard-harness: run ' 5 >&2
	fi
	# The digits only: the console printer may append a kernel record to the line.
	probe_exit=$(sed -n 's/^pfnguard-harness: probe-exit \([0-9][0-9]*\).*/\1/p' "$log" | head -n1)
	if [[ -n $probe_exit && $probe_exit != 0 ]]; then
		problems+=("probe exited with status $probe_exit")
		console_excerpt "$log" '^pfnguard-harness: probe-exit ' 10 5 >&2
	fi
}

# ---------------------------------------------------------------------------
# guests in parallel

# run_guest_pool FUNC KEY...: FUNC KEY in a worker subshell per key, `jobs` at a time. A worker's
# stderr goes to $work_dir/log-KEY (unless --verbose) and is printed as one block, each line
# prefixed with [KEY], when it ends; FUNC writes its results as assignments to
# $work_dir/result-KEY (res_status[KEY] among them), sourced here. Sets failed=1 when a worker
# fails. The guest's QEMU (qemu_pid) dies with its worker.
declare -A res_status=() worker_start=()
failed=0
run_guest_pool() {
	local func=$1 key
	shift
	for key in "$@"; do
		while ((${#worker_pids[@]} >= jobs)); do
			reap_worker
		done
		log "$key: starting the guest"
		worker_start[$key]=$EPOCHREALTIME
		guest_worker "$func" "$key" &
		worker_pids[$key]=$!
	done
	while ((${#worker_pids[@]})); do
		reap_worker
	done
}

guest_worker() {
	local func=$1 key=$2
	qemu_pid=
	# shellcheck disable=SC2317 # invoked through the traps
	kill_guest() { [[ -z $qemu_pid ]] || kill "$qemu_pid" 2>/dev/null || true; }
	trap kill_guest EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
	# Called in a condition, as a failed guest is a result: errexit stays off inside.
	local rc=0
	if ((verbose)); then
		"$func" "$key" || rc=$?
	else
		"$func" "$key" 2>"$work_dir/log-$key" || rc=$?
	fi
	return "$rc"
}

reap_worker() {
	local done_pid='' k rc=0 key=''
	wait -n -p done_pid "${worker_pids[@]}" || rc=$?
	for k in "${!worker_pids[@]}"; do
		[[ ${worker_pids[$k]} != "$done_pid" ]] || key=$k
	done
	[[ -n $key ]] || return 0
	unset "worker_pids[$key]"
	((rc == 0)) || failed=1
	if [[ -s $work_dir/log-$key ]]; then
		sed "s/^/[$key] /" "$work_dir/log-$key" >&2
	fi
	# shellcheck disable=SC1090 # assignments written by the worker's FUNC
	[[ ! -f $work_dir/result-$key ]] || source "$work_dir/result-$key"
	[[ -n ${res_status[$key]:-} ]] ||
		res_status[$key]="FAIL: the guest did not run (status $rc; its log is above)"
	log "$key: guest done in $(since "${worker_start[$key]}")s (${res_status[$key]})"
}
