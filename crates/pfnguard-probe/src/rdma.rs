//! The `rdma_reg_mr` op: what `ibv_reg_mr(pd, addr, len, IBV_ACCESS_LOCAL_WRITE)`
//! sends, through the legacy `write()` ABI of `/dev/infiniband/uverbsN`.
//!
//! The op opens the uverbs node, then `GET_CONTEXT`, `ALLOC_PD`, `REG_MR`
//! over the whole mapping with `IB_ACCESS_LOCAL_WRITE` (`ib_uverbs_reg_mr` →
//! the driver's `reg_user_mr` → `ib_umem_get`, drivers/infiniband/core/umem.c,
//! which pins the pages with `FOLL_LONGTERM|FOLL_WRITE`), `DEREG_MR` and
//! `DEALLOC_PD`, and closes everything. The value is `ok` when `REG_MR`
//! succeeds, else its errno name; a failing setup step is `unavailable`.
//!
//! [`setup`] picks the uverbs node once per run. When there is none, the
//! probe creates a device only when asked ([`crate::ProbeOptions::create_soft_roce`])
//! and the soft-RoCE driver is loaded (`/sys/module/rdma_rxe`): the device
//! [`RXE_NAME`] over the chosen network interface, as `rdma link add rxe0 type
//! rxe netdev IF` does, an RDMA netlink `RDMA_NLDEV_CMD_NEWLINK` request with
//! `RDMA_NLDEV_ATTR_DEV_NAME`, `RDMA_NLDEV_ATTR_LINK_TYPE` `"rxe"` and
//! `RDMA_NLDEV_ATTR_NDEV_NAME` (`nldev_newlink`,
//! drivers/infiniband/core/nldev.c; needs `CAP_NET_ADMIN`), then waits for the
//! uverbs node. The returned [`SoftRoceDevice`] removes the device again
//! (`RDMA_NLDEV_CMD_DELLINK`, as `rdma link delete rxe0` does) when the probe
//! ends, on every path.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use serde_json::json;

use crate::errno;
use crate::ops::Measured;
use crate::sys::{self, Mapping};
use crate::uapi;
use crate::{worker, SoftRoce};

/// The soft-RoCE device the probe creates when asked to.
pub(crate) const RXE_NAME: &str = "rxe0";

/// How long to wait for a netlink answer, and for the uverbs node of a new device.
const NODE_WAIT: Duration = Duration::from_secs(3);

/// `IFNAMSIZ`: a network interface name is shorter than this.
const IFNAMSIZ: usize = 16;

/// The first `/dev/infiniband/uverbs*` node, by name.
fn uverbs_node() -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir("/dev/infiniband")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("uverbs"))
        .collect();
    names.sort();
    names
        .into_iter()
        .next()
        .map(|n| Path::new("/dev/infiniband").join(n))
}

/// Whether the RDMA device `name` exists.
fn ib_device_exists(name: &str) -> bool {
    Path::new("/sys/class/infiniband").join(name).exists()
}

/// Whether `/sys/class/net/NAME` is a network interface that is up.
fn interface_up(dir: &Path) -> bool {
    let flags = std::fs::read_to_string(dir.join("flags")).unwrap_or_default();
    u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).is_ok_and(|f| f & 1 != 0)
    // IFF_UP
}

/// The first network interface (by name) that is up and not a loopback.
fn first_up_interface() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().find(|n| {
        let dir = Path::new("/sys/class/net").join(n);
        // ARPHRD_LOOPBACK
        let loopback = std::fs::read_to_string(dir.join("type"))
            .unwrap_or_default()
            .trim()
            == "772";
        !loopback && interface_up(&dir)
    })
}

/// Whether `name` can be a network interface name (`dev_valid_name()`,
/// net/core/dev.c): 1 to 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub(crate) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
}

/// The interface a soft-RoCE device goes over, or why there is none.
fn soft_roce_netdev(how: &SoftRoce) -> Result<String, String> {
    match how {
        SoftRoce::FirstUp => first_up_interface()
            .ok_or_else(|| "ENODEV (no network interface is up for a soft-RoCE device)".into()),
        SoftRoce::Netdev(name) => {
            if !valid_ifname(name) {
                return Err(format!("ENODEV ({name:?} is not a network interface name)"));
            }
            let dir = Path::new("/sys/class/net").join(name);
            if !dir.exists() {
                Err(format!("ENODEV (no network interface {name})"))
            } else if !interface_up(&dir) {
                Err(format!("ENODEV (network interface {name} is not up)"))
            } else {
                Ok(name.clone())
            }
        }
    }
}

/// A soft-RoCE device this probe created; dropping it removes the device.
#[derive(Debug)]
pub(crate) struct SoftRoceDevice {
    name: String,
    /// The process that created it: forked children never remove it.
    owner: rustix::process::Pid,
    removed: bool,
}

impl SoftRoceDevice {
    /// Remove the device (`rdma link delete NAME`).
    pub(crate) fn remove(mut self) -> Result<(), String> {
        self.removed = true;
        dellink(&self.name).map_err(|e| {
            format!(
                "removing the soft-RoCE device {}: {}",
                self.name,
                errno::errno(e)
            )
        })
    }
}

impl Drop for SoftRoceDevice {
    fn drop(&mut self) {
        if self.removed || rustix::process::getpid() != self.owner {
            return;
        }
        self.removed = true;
        if let Err(e) = dellink(&self.name) {
            eprintln!(
                "pfnguard: removing the soft-RoCE device {}: {}",
                self.name,
                errno::errno(e)
            );
        }
    }
}

/// The uverbs node `rdma_reg_mr` uses, or why there is none (`ENODEV` and the
/// reason in parentheses), and the soft-RoCE device created for it, if any.
///
/// Without a uverbs node a device is created only when `soft_roce` asks for
/// one; creating it runs in a child bounded by `timeout`.
pub(crate) fn setup(
    timeout: Duration,
    soft_roce: Option<&SoftRoce>,
) -> (Result<PathBuf, String>, Option<SoftRoceDevice>) {
    if let Some(p) = uverbs_node() {
        return (Ok(p), None);
    }
    let Some(how) = soft_roce else {
        return (
            Err(
                "ENODEV (no RDMA device; create_soft_roce (pfnguard probe --create-soft-roce) \
                 creates a soft-RoCE device)"
                    .into(),
            ),
            None,
        );
    };
    if !Path::new("/sys/module/rdma_rxe").exists() {
        return (
            Err(
                "ENODEV (no RDMA device, and rdma_rxe is not loaded for a soft-RoCE device)".into(),
            ),
            None,
        );
    }
    let ndev = match soft_roce_netdev(how) {
        Ok(n) => n,
        Err(why) => return (Err(why), None),
    };
    if ib_device_exists(RXE_NAME) {
        return (
            Err(format!(
                "ENODEV ({RXE_NAME} exists but has no /dev/infiniband/uverbs* node)"
            )),
            None,
        );
    }
    let owner = rustix::process::getpid();
    let created = {
        let ndev = ndev.clone();
        worker::run(timeout, move |_| {
            newlink(RXE_NAME, "rxe", &ndev).map_err(errno::errno)
        })
    };
    // The device is ours if it did not exist before and exists now, whatever the child said
    // (it may have been killed after the kernel created the device).
    let device = ib_device_exists(RXE_NAME).then(|| SoftRoceDevice {
        name: RXE_NAME.to_owned(),
        owner,
        removed: false,
    });
    let failed = match created {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(e) => Some(e.to_string()),
    };
    if let (Some(e), None) = (&failed, &device) {
        return (
            Err(format!("ENODEV (creating {RXE_NAME} over {ndev}: {e})")),
            None,
        );
    }
    let until = Instant::now() + NODE_WAIT;
    loop {
        if let Some(p) = uverbs_node() {
            return (Ok(p), device);
        }
        if Instant::now() >= until {
            return (
                Err(format!(
                    "ENODEV ({RXE_NAME} created over {ndev}, but no /dev/infiniband/uverbs* \
                     appeared)"
                )),
                device,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Append an attribute with payload `data`, padded to 4 bytes (`NLA_ALIGN`).
fn put_attr(msg: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = std::mem::size_of::<uapi::Nlattr>() + data.len();
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(data);
    while msg.len() % 4 != 0 {
        msg.push(0);
    }
}

/// Append a NUL-terminated string attribute.
fn put_str_attr(msg: &mut Vec<u8>, kind: u16, s: &str) {
    let mut data = s.as_bytes().to_vec();
    data.push(0);
    put_attr(msg, kind, &data);
}

/// A netlink request of RDMA netlink command `cmd` with `flags` and the
/// attributes `attrs` appended by the caller.
fn request(cmd: u16, flags: u16, seq: u32, attrs: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut msg = vec![0u8; std::mem::size_of::<uapi::Nlmsghdr>()];
    attrs(&mut msg);
    let len = msg.len() as u32;
    let kind = uapi::rdma_nl_get_type(uapi::RDMA_NL_NLDEV, cmd);
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&kind.to_ne_bytes());
    msg[6..8].copy_from_slice(&flags.to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    msg
}

/// The `RDMA_NLDEV_CMD_NEWLINK` request for device `ibdev` of link type
/// `kind` over network device `ndev`.
fn newlink_request(ibdev: &str, kind: &str, ndev: &str, seq: u32) -> Vec<u8> {
    let flags = uapi::NLM_F_REQUEST | uapi::NLM_F_ACK;
    request(uapi::RDMA_NLDEV_CMD_NEWLINK, flags, seq, |m| {
        put_str_attr(m, uapi::RDMA_NLDEV_ATTR_DEV_NAME, ibdev);
        put_str_attr(m, uapi::RDMA_NLDEV_ATTR_LINK_TYPE, kind);
        put_str_attr(m, uapi::RDMA_NLDEV_ATTR_NDEV_NAME, ndev);
    })
}

/// The `RDMA_NLDEV_CMD_DELLINK` request for the device with index `index`.
fn dellink_request(index: u32, seq: u32) -> Vec<u8> {
    let flags = uapi::NLM_F_REQUEST | uapi::NLM_F_ACK;
    request(uapi::RDMA_NLDEV_CMD_DELLINK, flags, seq, |m| {
        put_attr(m, uapi::RDMA_NLDEV_ATTR_DEV_INDEX, &index.to_ne_bytes());
    })
}

/// The `RDMA_NLDEV_CMD_GET` dump request (every RDMA device).
fn get_dump_request(seq: u32) -> Vec<u8> {
    request(
        uapi::RDMA_NLDEV_CMD_GET,
        uapi::NLM_F_REQUEST | uapi::NLM_F_DUMP,
        seq,
        |_| {},
    )
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

/// One netlink message: its type, sequence number and payload.
struct Message<'a> {
    kind: u16,
    seq: u32,
    payload: &'a [u8],
}

/// The well-formed netlink messages at the start of `buf`.
fn messages(buf: &[u8]) -> Vec<Message<'_>> {
    let hdr = std::mem::size_of::<uapi::Nlmsghdr>();
    let mut out = Vec::new();
    let mut off = 0;
    while let (Some(len), Some(kind), Some(seq)) =
        (u32_at(buf, off), u16_at(buf, off + 4), u32_at(buf, off + 8))
    {
        let len = len as usize;
        let Some(payload) = buf.get(off + hdr..off + len) else {
            break;
        };
        if len < hdr {
            break;
        }
        out.push(Message { kind, seq, payload });
        off += (len + 3) & !3;
    }
    out
}

/// The attributes of an RDMA netlink payload (no family header), as (type, data).
fn attrs(payload: &[u8]) -> Vec<(u16, &[u8])> {
    let hdr = std::mem::size_of::<uapi::Nlattr>();
    let mut out = Vec::new();
    let mut off = 0;
    while let (Some(len), Some(kind)) = (u16_at(payload, off), u16_at(payload, off + 2)) {
        let len = len as usize;
        let Some(data) = payload.get(off + hdr..off + len) else {
            break;
        };
        if len < hdr {
            break;
        }
        // NLA_TYPE_MASK: drop the nested / byte-order flags.
        out.push((kind & 0x3fff, data));
        off += (len + 3) & !3;
    }
    out
}

/// The errno of the `NLMSG_ERROR` answering `seq` in `buf` (0: acknowledged).
fn ack_errno(buf: &[u8], seq: u32) -> Option<i32> {
    messages(buf)
        .into_iter()
        .find(|m| m.kind == uapi::NLMSG_ERROR && m.seq == seq)
        .and_then(|m| u32_at(m.payload, 0))
        .map(|e| e as i32)
}

/// The index of the device named `name` among the `RDMA_NLDEV_CMD_GET`
/// answers in `buf`, and whether `buf` ends the dump (`NLMSG_DONE`).
fn dump_find(buf: &[u8], seq: u32, name: &str) -> (Option<u32>, bool) {
    let get = uapi::rdma_nl_get_type(uapi::RDMA_NL_NLDEV, uapi::RDMA_NLDEV_CMD_GET);
    let mut found = None;
    let mut done = false;
    for m in messages(buf).into_iter().filter(|m| m.seq == seq) {
        if m.kind == uapi::NLMSG_DONE || m.kind == uapi::NLMSG_ERROR {
            done = true;
        } else if m.kind == get {
            let a = attrs(m.payload);
            let index = a
                .iter()
                .find(|(k, _)| *k == uapi::RDMA_NLDEV_ATTR_DEV_INDEX)
                .and_then(|(_, d)| u32_at(d, 0));
            let named = a.iter().any(|(k, d)| {
                *k == uapi::RDMA_NLDEV_ATTR_DEV_NAME
                    && d.split(|b| *b == 0).next() == Some(name.as_bytes())
            });
            if named {
                found = found.or(index);
            }
        }
    }
    (found, done)
}

/// An RDMA netlink socket whose reads time out after [`NODE_WAIT`].
fn rdma_socket() -> rustix::io::Result<OwnedFd> {
    use rustix::net::{self, sockopt, AddressFamily, Protocol, SocketFlags, SocketType};
    let proto = Protocol::from_raw(net::RawProtocol::new(uapi::NETLINK_RDMA).ok_or(Errno::INVAL)?);
    let sock = net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(proto),
    )?;
    sockopt::set_socket_timeout(&sock, sockopt::Timeout::Recv, Some(NODE_WAIT))?;
    Ok(sock)
}

/// Send `msg` and wait for the acknowledgement of `seq`.
fn transact(sock: &OwnedFd, msg: &[u8], seq: u32) -> rustix::io::Result<()> {
    rustix::io::write(sock, msg)?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = rustix::io::read(sock, &mut buf)?;
        if n == 0 {
            return Err(Errno::NOMSG);
        }
        match ack_errno(&buf[..n], seq) {
            Some(0) => return Ok(()),
            Some(e) => return Err(Errno::from_raw_os_error(-e)),
            None => continue,
        }
    }
}

/// `rdma link add IBDEV type KIND netdev NDEV` through RDMA netlink.
fn newlink(ibdev: &str, kind: &str, ndev: &str) -> rustix::io::Result<()> {
    let sock = rdma_socket()?;
    transact(&sock, &newlink_request(ibdev, kind, ndev, 1), 1)
}

/// `rdma link delete IBDEV` through RDMA netlink: find its index with a
/// `RDMA_NLDEV_CMD_GET` dump, then `RDMA_NLDEV_CMD_DELLINK`.
fn dellink(ibdev: &str) -> rustix::io::Result<()> {
    let sock = rdma_socket()?;
    let seq = 1;
    rustix::io::write(&sock, &get_dump_request(seq))?;
    let mut buf = vec![0u8; 32768];
    let mut index = None;
    loop {
        let n = rustix::io::read(&sock, &mut buf)?;
        if n == 0 {
            return Err(Errno::NOMSG);
        }
        let (found, done) = dump_find(&buf[..n], seq, ibdev);
        index = index.or(found);
        if done {
            break;
        }
    }
    let index = index.ok_or(Errno::NODEV)?;
    transact(&sock, &dellink_request(index, seq + 1), seq + 1)
}

fn unavailable(step: &str, e: Errno) -> Measured {
    Measured::unavailable(format!("{step}: {}", errno::errno(e)))
}

/// Run the `rdma_reg_mr` op on `map` through the uverbs node `dev`.
pub(crate) fn reg_mr(map: &mut Mapping, dev: &str) -> Measured {
    let fd = match rustix::fs::open(dev, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return unavailable(&format!("open {dev}"), e),
    };
    let (async_fd, _vectors) = match sys::uverbs_get_context(fd.as_fd()) {
        Ok(r) => r,
        Err(e) => return unavailable("IB_USER_VERBS_CMD_GET_CONTEXT", e),
    };
    let pd = match sys::uverbs_alloc_pd(fd.as_fd()) {
        Ok(pd) => pd,
        Err(e) => return unavailable("IB_USER_VERBS_CMD_ALLOC_PD", e),
    };
    let mut out = match sys::uverbs_reg_mr(fd.as_fd(), pd, map, uapi::IB_UVERBS_ACCESS_LOCAL_WRITE)
    {
        Ok(mr) => {
            let out = Measured::ok();
            match sys::uverbs_dereg_mr(fd.as_fd(), mr.mr_handle) {
                Ok(()) => out,
                Err(e) => out.with("rdma_dereg_mr", json!(errno::errno(e))),
            }
        }
        Err(e) => Measured::errno(e),
    };
    if let Err(e) = sys::uverbs_dealloc_pd(fd.as_fd(), pd) {
        out = out.with("rdma_dealloc_pd", json!(errno::errno(e)));
    }
    drop(async_fd);
    drop(fd);
    out.with("rdma_device", json!(dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlink_request_layout() {
        let m = newlink_request("rxe0", "rxe", "eth0", 7);
        // 16-byte header, then three attributes of 4 + 5/4/5 bytes, each padded to 4.
        assert_eq!(m.len(), 16 + 12 + 8 + 12);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 48);
        assert_eq!(
            u16::from_ne_bytes(m[4..6].try_into().unwrap()),
            (5 << 10) + 3
        );
        assert_eq!(u16::from_ne_bytes(m[6..8].try_into().unwrap()), 5);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
        assert_eq!(&m[16..18], &9u16.to_ne_bytes());
        assert_eq!(&m[18..20], &2u16.to_ne_bytes());
        assert_eq!(&m[20..25], b"rxe0\0");
        assert_eq!(&m[28..30], &8u16.to_ne_bytes());
        assert_eq!(&m[30..32], &65u16.to_ne_bytes());
        assert_eq!(&m[32..36], b"rxe\0");
        assert_eq!(&m[38..40], &51u16.to_ne_bytes());
        assert_eq!(&m[40..45], b"eth0\0");
    }

    /// One `RDMA_NLDEV_CMD_GET` dump answer for device `index` named `name`.
    fn dump_entry(index: u32, name: &str, seq: u32) -> Vec<u8> {
        let mut m = request(uapi::RDMA_NLDEV_CMD_GET, 2, seq, |m| {
            put_attr(m, uapi::RDMA_NLDEV_ATTR_DEV_INDEX, &index.to_ne_bytes());
            put_str_attr(m, uapi::RDMA_NLDEV_ATTR_DEV_NAME, name);
        });
        m.extend_from_slice(&[0xff; 3][..(4 - m.len() % 4) % 4]);
        m
    }

    #[test]
    fn dellink_and_dump_requests_layout() {
        let m = dellink_request(3, 9);
        assert_eq!(m.len(), 16 + 8);
        assert_eq!(u32_at(&m, 0), Some(24));
        assert_eq!(u16_at(&m, 4), Some((5 << 10) + 4));
        assert_eq!(u16_at(&m, 6), Some(5));
        assert_eq!(u32_at(&m, 8), Some(9));
        assert_eq!(u16_at(&m, 16), Some(8));
        assert_eq!(u16_at(&m, 18), Some(1));
        assert_eq!(u32_at(&m, 20), Some(3));

        let g = get_dump_request(4);
        assert_eq!(g.len(), 16);
        assert_eq!(u16_at(&g, 4), Some((5 << 10) + 1));
        assert_eq!(u16_at(&g, 6), Some(0x301));
    }

    #[test]
    fn dumps_are_searched_by_name() {
        let mut buf = dump_entry(1, "mlx5_0", 7);
        buf.extend(dump_entry(4, "rxe0", 7));
        assert_eq!(dump_find(&buf, 7, "rxe0"), (Some(4), false));
        assert_eq!(dump_find(&buf, 7, "rxe"), (None, false));
        assert_eq!(dump_find(&buf, 8, "rxe0"), (None, false));
        let mut done = vec![0u8; 20];
        done[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&uapi::NLMSG_DONE.to_ne_bytes());
        done[8..12].copy_from_slice(&7u32.to_ne_bytes());
        assert_eq!(dump_find(&done, 7, "rxe0"), (None, true));
        buf.extend(done);
        assert_eq!(dump_find(&buf, 7, "rxe0"), (Some(4), true));
    }

    #[test]
    fn truncated_netlink_input_is_ignored() {
        let buf = dump_entry(4, "rxe0", 7);
        for cut in 0..buf.len() {
            let (found, done) = dump_find(&buf[..cut], 7, "rxe0");
            assert!(!done);
            assert_eq!(found, None, "cut {cut}");
        }
        // A length field pointing past the end, or below the header size.
        let mut bad = buf.clone();
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(messages(&bad).is_empty());
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(messages(&bad).is_empty());
        assert!(attrs(&[4, 0, 1]).is_empty());
        assert!(attrs(&[2, 0, 1, 0]).is_empty());
    }

    #[test]
    fn interface_names_are_validated() {
        for ok in ["eth0", "enp0s3", "a", "wlan0-x.1", "123456789012345"] {
            assert!(valid_ifname(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../../x",
            "eth0:1",
            "a b",
            "1234567890123456",
            "a\0b",
        ] {
            assert!(!valid_ifname(bad), "{bad:?}");
        }
    }

    #[test]
    fn no_device_is_created_unless_asked() {
        if uverbs_node().is_some() {
            return;
        }
        let before = ib_device_exists(RXE_NAME);
        let (node, device) = setup(Duration::from_secs(5), None);
        let why = node.unwrap_err();
        assert!(why.starts_with("ENODEV (no RDMA device;"), "{why}");
        assert!(why.contains("create_soft_roce"), "{why}");
        assert!(device.is_none());
        assert_eq!(ib_device_exists(RXE_NAME), before);
    }

    #[test]
    fn acks_are_parsed() {
        let mut ack = vec![0u8; 36];
        ack[0..4].copy_from_slice(&36u32.to_ne_bytes());
        ack[4..6].copy_from_slice(&uapi::NLMSG_ERROR.to_ne_bytes());
        ack[8..12].copy_from_slice(&7u32.to_ne_bytes());
        ack[16..20].copy_from_slice(&(-17i32).to_ne_bytes());
        assert_eq!(ack_errno(&ack, 7), Some(-17));
        assert_eq!(ack_errno(&ack, 8), None);
        ack[16..20].copy_from_slice(&0i32.to_ne_bytes());
        assert_eq!(ack_errno(&ack, 7), Some(0));
        assert_eq!(ack_errno(&ack[..10], 7), None);
    }
}
