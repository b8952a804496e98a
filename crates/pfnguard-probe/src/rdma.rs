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
//! [`device`] picks the uverbs node once per run. When there is none but the
//! soft-RoCE driver is loaded (`/sys/module/rdma_rxe`), it creates the device
//! [`RXE_NAME`] over the first network interface (by name) that is up and not
//! a loopback, as `rdma link add rxe0 type rxe netdev IF` does: an RDMA
//! netlink `RDMA_NLDEV_CMD_NEWLINK` request with `RDMA_NLDEV_ATTR_DEV_NAME`,
//! `RDMA_NLDEV_ATTR_LINK_TYPE` `"rxe"` and `RDMA_NLDEV_ATTR_NDEV_NAME`
//! (`nldev_newlink`, drivers/infiniband/core/nldev.c; needs `CAP_NET_ADMIN`),
//! then waits for the uverbs node. The device stays after the run.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use serde_json::json;

use crate::errno;
use crate::ops::Measured;
use crate::sys::{self, Mapping};
use crate::uapi;

/// The soft-RoCE device the probe creates when it needs one.
pub(crate) const RXE_NAME: &str = "rxe0";

/// How long to wait for the uverbs node of a new device.
const NODE_WAIT: Duration = Duration::from_secs(3);

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

/// The first network interface (by name) that is up and not a loopback.
fn up_interface() -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().find(|n| {
        let dir = Path::new("/sys/class/net").join(n);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        // ARPHRD_LOOPBACK
        let loopback = read("type").trim() == "772";
        let flags = read("flags");
        let up = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
            .is_ok_and(|f| f & 1 != 0); // IFF_UP
        !loopback && up
    })
}

/// The uverbs node `rdma_reg_mr` uses, or why there is none (`ENODEV`, with
/// the reason in parentheses when creating a soft-RoCE device failed).
pub(crate) fn device() -> Result<String, String> {
    if let Some(p) = uverbs_node() {
        return Ok(p.display().to_string());
    }
    if !Path::new("/sys/module/rdma_rxe").exists() {
        return Err("ENODEV".into());
    }
    let Some(ndev) = up_interface() else {
        return Err("ENODEV (rdma_rxe is loaded, but no network interface is up)".into());
    };
    match newlink(RXE_NAME, "rxe", &ndev) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => {
            return Err(format!(
                "ENODEV (creating {RXE_NAME} over {ndev}: {})",
                errno::errno(e)
            ))
        }
    }
    let until = Instant::now() + NODE_WAIT;
    loop {
        if let Some(p) = uverbs_node() {
            return Ok(p.display().to_string());
        }
        if Instant::now() >= until {
            return Err(format!(
                "ENODEV ({RXE_NAME} created over {ndev}, but no /dev/infiniband/uverbs* appeared)"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Append a NUL-terminated string attribute, padded to 4 bytes (`NLA_ALIGN`).
fn put_str_attr(msg: &mut Vec<u8>, kind: u16, s: &str) {
    let len = std::mem::size_of::<uapi::Nlattr>() + s.len() + 1;
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(s.as_bytes());
    msg.push(0);
    while msg.len() % 4 != 0 {
        msg.push(0);
    }
}

/// The `RDMA_NLDEV_CMD_NEWLINK` request for device `ibdev` of link type
/// `kind` over network device `ndev`.
fn newlink_request(ibdev: &str, kind: &str, ndev: &str, seq: u32) -> Vec<u8> {
    let hdr = std::mem::size_of::<uapi::Nlmsghdr>();
    let mut msg = vec![0u8; hdr];
    put_str_attr(&mut msg, uapi::RDMA_NLDEV_ATTR_DEV_NAME, ibdev);
    put_str_attr(&mut msg, uapi::RDMA_NLDEV_ATTR_LINK_TYPE, kind);
    put_str_attr(&mut msg, uapi::RDMA_NLDEV_ATTR_NDEV_NAME, ndev);
    let len = msg.len() as u32;
    let kind = uapi::rdma_nl_get_type(uapi::RDMA_NL_NLDEV, uapi::RDMA_NLDEV_CMD_NEWLINK);
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&kind.to_ne_bytes());
    msg[6..8].copy_from_slice(&(uapi::NLM_F_REQUEST | uapi::NLM_F_ACK).to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    msg
}

/// The errno of the `NLMSG_ERROR` answering `seq` in `buf` (0: acknowledged).
fn ack_errno(buf: &[u8], seq: u32) -> Option<i32> {
    let hdr = std::mem::size_of::<uapi::Nlmsghdr>();
    let mut off = 0;
    while off + hdr <= buf.len() {
        let u32_at = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().unwrap());
        let len = u32_at(off) as usize;
        let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
        if len < hdr || off + len > buf.len() {
            return None;
        }
        if kind == uapi::NLMSG_ERROR && u32_at(off + 8) == seq && len >= hdr + 4 {
            return Some(u32_at(off + hdr) as i32);
        }
        off += (len + 3) & !3;
    }
    None
}

/// `rdma link add IBDEV type KIND netdev NDEV` through RDMA netlink.
fn newlink(ibdev: &str, kind: &str, ndev: &str) -> rustix::io::Result<()> {
    use rustix::net::{self, sockopt, AddressFamily, Protocol, SocketFlags, SocketType};
    let proto = Protocol::from_raw(net::RawProtocol::new(uapi::NETLINK_RDMA).ok_or(Errno::INVAL)?);
    let sock = net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(proto),
    )?;
    sockopt::set_socket_timeout(&sock, sockopt::Timeout::Recv, Some(NODE_WAIT))?;
    let seq = 1;
    rustix::io::write(&sock, &newlink_request(ibdev, kind, ndev, seq))?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = rustix::io::read(&sock, &mut buf)?;
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
