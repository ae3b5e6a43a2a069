//! JCEKS specifics: finding where a secret-key entry ends.
//!
//! JCEKS shares JKS's layout (see `jks.rs`, which reads both) except for secret-key
//! entries, which are a Java-serialized `SealedObject` written with a fresh
//! `ObjectOutputStream` and no length prefix. certmesh never decrypts them; it only needs
//! their length to carry them over byte for byte. This is a bounded walker over the Java
//! serialization grammar (Object Serialization Stream Protocol, chapter 6) that records
//! class descriptors so it knows the size of each field value. Anything it does not
//! understand is an error, never a guess: a wrong length would corrupt every entry after
//! it.

/// Deepest nesting of objects accepted (a SealedObject nests 3 levels).
const MAX_DEPTH: usize = 32;
/// First handle number the serialization protocol assigns.
const BASE_HANDLE: u32 = 0x7e_0000;

const TC_NULL: u8 = 0x70;
const TC_REFERENCE: u8 = 0x71;
const TC_CLASSDESC: u8 = 0x72;
const TC_OBJECT: u8 = 0x73;
const TC_STRING: u8 = 0x74;
const TC_ARRAY: u8 = 0x75;
const TC_CLASS: u8 = 0x76;
const TC_BLOCKDATA: u8 = 0x77;
const TC_ENDBLOCKDATA: u8 = 0x78;
const TC_BLOCKDATALONG: u8 = 0x7a;
const TC_LONGSTRING: u8 = 0x7c;
const TC_ENUM: u8 = 0x7e;

const SC_WRITE_METHOD: u8 = 0x01;
const SC_SERIALIZABLE: u8 = 0x02;
const SC_EXTERNALIZABLE: u8 = 0x04;
const SC_BLOCK_DATA: u8 = 0x08;

/// Length in bytes of the serialization stream (header and one object) at the start of
/// `data`.
pub fn sealed_object_len(data: &[u8]) -> Result<usize, String> {
    let mut w = Walker {
        data,
        pos: 0,
        handles: Vec::new(),
        descs: Vec::new(),
    };
    if w.take(4)? != [0xac, 0xed, 0x00, 0x05] {
        return Err("not a Java serialization stream".into());
    }
    w.content(0)?;
    Ok(w.pos)
}

/// The classes a JCEKS secret-key entry holds when Java wrote it: `SealedObjectForKeyProtector`
/// (what `keytool -genseckey` and `KeyStore.setEntry` store), or its parent class.
const SEALED_KEY_CLASSES: [&str; 2] = [
    "com.sun.crypto.provider.SealedObjectForKeyProtector",
    "javax.crypto.SealedObject",
];

/// The class name of the object a secret-key entry holds, when it is not one Java reads
/// back as a secret key: keytool refuses such an entry, so it must not be listed as a
/// valid secret key. `None` for a readable sealed key.
pub fn unreadable_sealed_class(sealed: &[u8]) -> Option<String> {
    let mut w = Walker {
        data: sealed,
        pos: 4,
        handles: Vec::new(),
        descs: Vec::new(),
    };
    let class = (|| -> Result<String, String> {
        if w.u8()? != TC_OBJECT || w.u8()? != TC_CLASSDESC {
            return Err("not an object".into());
        }
        w.utf()
    })()
    .unwrap_or_else(|_| "(unknown)".into());
    (!SEALED_KEY_CLASSES.contains(&class.as_str())).then_some(class)
}

#[derive(Clone, Copy)]
enum Handle {
    Desc(usize),
    Other,
}

struct ClassDesc {
    /// Class name, for arrays ("[B") and for messages.
    name: String,
    flags: u8,
    /// Field type codes in stream order (B C D F I J S Z primitives, L [ objects).
    fields: Vec<u8>,
    superclass: Option<usize>,
}

struct Walker<'a> {
    data: &'a [u8],
    pos: usize,
    handles: Vec<Handle>,
    descs: Vec<ClassDesc>,
}

impl<'a> Walker<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.data.len() - self.pos < n {
            return Err("truncated".into());
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn utf(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }

    fn new_handle(&mut self, h: Handle) {
        self.handles.push(h);
    }

    fn lookup(&mut self) -> Result<Handle, String> {
        let h = self.u32()?;
        h.checked_sub(BASE_HANDLE)
            .and_then(|i| self.handles.get(i as usize).copied())
            .ok_or_else(|| "reference to an unknown handle".to_string())
    }

    /// One `content` element: an object or a block of data.
    fn content(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        let tc = self.u8()?;
        match tc {
            TC_BLOCKDATA => {
                let n = self.u8()? as usize;
                self.take(n).map(|_| ())
            }
            TC_BLOCKDATALONG => {
                let n = self.u32()? as usize;
                self.take(n).map(|_| ())
            }
            _ => self.object_after_tag(tc, depth),
        }
    }

    /// An `object` element whose type code has been read.
    fn object_after_tag(&mut self, tc: u8, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        match tc {
            TC_NULL => Ok(()),
            TC_REFERENCE => self.lookup().map(|_| ()),
            TC_STRING => {
                let n = self.u16()? as usize;
                self.take(n)?;
                self.new_handle(Handle::Other);
                Ok(())
            }
            TC_LONGSTRING => {
                let b = self.take(8)?;
                let n = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                let n = usize::try_from(n).map_err(|_| "string too long".to_string())?;
                self.take(n)?;
                self.new_handle(Handle::Other);
                Ok(())
            }
            TC_CLASSDESC => self.class_desc_after_tag(depth).map(|_| ()),
            TC_CLASS => {
                self.class_desc(depth + 1)?;
                self.new_handle(Handle::Other);
                Ok(())
            }
            TC_ENUM => {
                self.class_desc(depth + 1)?;
                self.new_handle(Handle::Other);
                let t = self.u8()?;
                self.object_after_tag(t, depth + 1)
            }
            TC_ARRAY => self.array(depth),
            TC_OBJECT => self.object(depth),
            other => Err(format!("unsupported serialization element 0x{other:02x}")),
        }
    }

    /// A `classDesc`: a new descriptor, a reference to one, or null.
    fn class_desc(&mut self, depth: usize) -> Result<Option<usize>, String> {
        match self.u8()? {
            TC_NULL => Ok(None),
            TC_CLASSDESC => self.class_desc_after_tag(depth).map(Some),
            TC_REFERENCE => match self.lookup()? {
                Handle::Desc(i) => Ok(Some(i)),
                Handle::Other => Err("reference to a non-class where a class was expected".into()),
            },
            other => Err(format!(
                "unsupported class descriptor element 0x{other:02x}"
            )),
        }
    }

    fn class_desc_after_tag(&mut self, depth: usize) -> Result<usize, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        let name = self.utf()?;
        self.take(8)?; // serialVersionUID
        let idx = self.descs.len();
        self.descs.push(ClassDesc {
            name,
            flags: 0,
            fields: Vec::new(),
            superclass: None,
        });
        self.new_handle(Handle::Desc(idx));
        let flags = self.u8()?;
        let count = self.u16()?;
        let mut fields = Vec::new();
        for _ in 0..count {
            let code = self.u8()?;
            self.utf()?; // field name
            match code {
                b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S' | b'Z' => {}
                b'L' | b'[' => {
                    // the field's class name, as a string object
                    let t = self.u8()?;
                    if t != TC_STRING && t != TC_REFERENCE && t != TC_LONGSTRING {
                        return Err("malformed field descriptor".into());
                    }
                    self.object_after_tag(t, depth + 1)?;
                }
                _ => return Err("unknown field type".into()),
            }
            fields.push(code);
        }
        self.annotation(depth)?;
        let superclass = self.class_desc(depth + 1)?;
        let d = &mut self.descs[idx];
        d.flags = flags;
        d.fields = fields;
        d.superclass = superclass;
        Ok(idx)
    }

    /// Contents up to and including TC_ENDBLOCKDATA.
    fn annotation(&mut self, depth: usize) -> Result<(), String> {
        loop {
            if self.data.get(self.pos) == Some(&TC_ENDBLOCKDATA) {
                self.pos += 1;
                return Ok(());
            }
            self.content(depth + 1)?;
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), String> {
        let desc = self
            .class_desc(depth + 1)?
            .ok_or_else(|| "array without a class".to_string())?;
        self.new_handle(Handle::Other);
        let n = self.u32()?;
        if n > i32::MAX as u32 {
            return Err("negative array size".into());
        }
        let n = n as usize;
        let elem = self.descs[desc].name.as_bytes().get(1).copied();
        match elem.and_then(prim_size) {
            Some(size) => {
                let total = n
                    .checked_mul(size)
                    .ok_or_else(|| "array too large".to_string())?;
                self.take(total).map(|_| ())
            }
            None if matches!(elem, Some(b'L') | Some(b'[')) => {
                // Each element takes at least one byte: a huge count fails on truncation.
                for _ in 0..n {
                    let t = self.u8()?;
                    self.object_after_tag(t, depth + 1)?;
                }
                Ok(())
            }
            None => Err("array of an unknown type".into()),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), String> {
        let desc = self
            .class_desc(depth + 1)?
            .ok_or_else(|| "object without a class".to_string())?;
        self.new_handle(Handle::Other);
        // Class data goes from the topmost serializable superclass down.
        let mut chain = Vec::new();
        let mut cur = Some(desc);
        while let Some(i) = cur {
            if chain.len() > MAX_DEPTH || chain.contains(&i) {
                return Err("class hierarchy loops or is too deep".into());
            }
            chain.push(i);
            cur = self.descs[i].superclass;
        }
        for &i in chain.iter().rev() {
            let flags = self.descs[i].flags;
            if flags & SC_EXTERNALIZABLE != 0 {
                if flags & SC_BLOCK_DATA == 0 {
                    return Err(format!(
                        "old-style externalizable class {} cannot be skipped",
                        self.descs[i].name
                    ));
                }
                self.annotation(depth)?;
                continue;
            }
            if flags & SC_SERIALIZABLE == 0 {
                continue;
            }
            let fields = self.descs[i].fields.clone();
            for code in fields {
                match prim_size(code) {
                    Some(n) => {
                        self.take(n)?;
                    }
                    None => {
                        let t = self.u8()?;
                        self.object_after_tag(t, depth + 1)?;
                    }
                }
            }
            if flags & SC_WRITE_METHOD != 0 {
                self.annotation(depth)?;
            }
        }
        Ok(())
    }
}

fn prim_size(code: u8) -> Option<usize> {
    match code {
        b'B' | b'Z' => Some(1),
        b'C' | b'S' => Some(2),
        b'F' | b'I' => Some(4),
        b'D' | b'J' => Some(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(sealed_object_len(b"").is_err());
        assert!(sealed_object_len(&[0xac, 0xed, 0, 5, TC_ARRAY]).is_err());
        // An array claiming 2^31-1 bytes with none present.
        let mut d = vec![0xac, 0xed, 0, 5, TC_ARRAY, TC_CLASSDESC, 0, 2, b'[', b'B'];
        d.extend_from_slice(&[0; 8]);
        d.extend_from_slice(&[SC_SERIALIZABLE, 0, 0, TC_ENDBLOCKDATA, TC_NULL]);
        d.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
        assert_eq!(sealed_object_len(&d).unwrap_err(), "truncated");
        // The same array with 3 bytes is 3 bytes long, plus what precedes.
        let mut ok = d[..d.len() - 4].to_vec();
        ok.extend_from_slice(&3u32.to_be_bytes());
        ok.extend_from_slice(&[1, 2, 3, 0xff]);
        assert_eq!(sealed_object_len(&ok).unwrap(), ok.len() - 1);
    }
}
