//! Just enough of ELF to tell a static executable from a dynamic one: a dynamic one names its
//! program interpreter (`PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`), which a busybox image
//! does not have.

const PT_INTERP: u32 = 3;

fn bytes<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], String> {
    data.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| "it is a truncated ELF file".to_string())
}

/// The program interpreter of the ELF executable `data`; `None` for a static one.
pub(crate) fn interpreter(data: &[u8]) -> Result<Option<String>, String> {
    if data.get(..4) != Some(b"\x7fELF") {
        return Err("it is not an ELF executable".into());
    }
    let wide = match data.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("it is an ELF file of an unknown class".into()),
    };
    let little = data.get(5) == Some(&1);
    let u16_at = |at: usize| -> Result<u64, String> {
        let b = bytes::<2>(data, at)?;
        Ok(u64::from(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }))
    };
    let u32_at = |at: usize| -> Result<u64, String> {
        let b = bytes::<4>(data, at)?;
        Ok(u64::from(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }))
    };
    let u64_at = |at: usize| -> Result<u64, String> {
        let b = bytes::<8>(data, at)?;
        Ok(if little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    };
    let index = |value: u64| {
        usize::try_from(value).map_err(|_| "it has an offset out of range".to_string())
    };
    let (phoff, phentsize, phnum) = if wide {
        (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?)
    } else {
        (u32_at(0x1c)?, u16_at(0x2a)?, u16_at(0x2c)?)
    };
    for i in 0..phnum {
        let header = index(phoff + i * phentsize)?;
        if u32_at(header)? != u64::from(PT_INTERP) {
            continue;
        }
        let (offset, size) = if wide {
            (u64_at(header + 0x08)?, u64_at(header + 0x20)?)
        } else {
            (u32_at(header + 0x04)?, u32_at(header + 0x10)?)
        };
        let (start, end) = (index(offset)?, index(offset + size)?);
        let raw = data.get(start..end).ok_or("it is a truncated ELF file")?;
        let name = String::from_utf8_lossy(raw)
            .trim_end_matches('\0')
            .to_string();
        return Ok(Some(name));
    }
    Ok(None)
}

/// The architecture of the ELF executable `data`, as image configs name it (`amd64`, `arm64`,
/// …).
pub(crate) fn architecture(data: &[u8]) -> Result<&'static str, String> {
    if data.get(..4) != Some(b"\x7fELF") {
        return Err("it is not an ELF executable".into());
    }
    let little = data.get(5) == Some(&1);
    let raw = bytes::<2>(data, 0x12)?;
    let machine = if little {
        u16::from_le_bytes(raw)
    } else {
        u16::from_be_bytes(raw)
    };
    match machine {
        0x3e => Ok("amd64"),
        0xb7 => Ok("arm64"),
        0x28 => Ok("arm"),
        0x03 => Ok("386"),
        0x15 => Ok("ppc64le"),
        0x16 => Ok("s390x"),
        0xf3 => Ok("riscv64"),
        other => Err(format!(
            "it is an executable for an unknown machine ({other:#x})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_executables_name_their_interpreter() {
        // The test binary itself is linked dynamically.
        let exe = fs_err::read(std::env::current_exe().unwrap()).unwrap();
        let interp = interpreter(&exe)
            .unwrap()
            .expect("the test executable is dynamic");
        assert!(interp.contains("ld"), "{interp}");
    }

    #[test]
    fn static_executables_have_none() {
        let busybox = std::path::Path::new("/bin/busybox");
        assert!(
            busybox.is_file(),
            "Debian's busybox-static is not installed; run scripts/dev-env"
        );
        let data = fs_err::read(busybox).unwrap();
        assert_eq!(interpreter(&data).unwrap(), None);
        assert_eq!(
            architecture(&data).unwrap(),
            op_oci::Platform::host().architecture
        );
    }

    #[test]
    fn other_files_are_refused() {
        assert!(
            interpreter(b"#!/bin/sh\n")
                .unwrap_err()
                .contains("not an ELF")
        );
        assert!(
            interpreter(b"\x7fELF\x02\x01")
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            architecture(b"#!/bin/sh\n")
                .unwrap_err()
                .contains("not an ELF")
        );
    }
}
