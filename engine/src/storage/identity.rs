//! Which ensemble a member belongs to: the `ensembleId` file in dataDir (beside `myid` and the
//! epoch files), written by `warren recover-quorum` on the survivors of a lost quorum, and by a
//! member that held no data when it first joined a recovered ensemble.
//!
//! The file holds a decimal u64 (as the epoch files hold theirs, see [`super::epochs`]); a
//! missing file is ensemble 0, the identity every ensemble has until it is recovered. Each
//! member tells its id in the peer hello (`quorum::codec`), and [`admit`] decides whether a
//! peer may link: so a member of the old ensemble that comes back with its old data (id 0, or
//! an older recovery's id) is refused by the recovered one, and refuses it in turn.

use std::io;
use std::path::Path;

use super::epochs::{read_number, write_number};
use super::Disk;

pub const ENSEMBLE_ID_FILE: &str = "ensembleId";

/// A member's identity as its hello tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Identity {
    /// The ensemble id (0: no `ensembleId` file).
    pub ensemble: u64,
    /// The member holds no data at all: no epoch, no log record, no snapshot, no
    /// `ensembleId`. It adopts the id of the first peer of another ensemble it admits.
    pub empty: bool,
}

/// Reads the ensemble id; None when the file does not exist.
///
/// # Errors
/// A file that cannot be read or does not hold a decimal u64; the message names the file.
pub fn load(disk: &dyn Disk, data_dir: &Path) -> io::Result<Option<u64>> {
    read_number::<u64>(disk, data_dir, ENSEMBLE_ID_FILE)
}

/// Writes the ensemble id durably (temp file, fsync, rename, fsync of the directory).
pub fn store(disk: &dyn Disk, data_dir: &Path, ensemble: u64) -> io::Result<()> {
    write_number(disk, data_dir, ENSEMBLE_ID_FILE, ensemble)
}

/// What to do with a peer whose hello says `theirs`, given `mine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Link with it.
    Yes,
    /// Link with it, after taking its ensemble id as mine (durably): I hold no data.
    Adopt(u64),
    /// Refuse: it belongs to another ensemble and both of us hold data.
    No,
}

/// The rule of the hello: the same ensemble links; a member that holds no data links with any
/// ensemble (and takes on its id when it is the one without data); two members of different
/// ensembles that both hold data never link. The last case is what keeps a returning member
/// of the lost ensemble, with its old log and epochs, out of a recovered one.
pub fn admit(mine: Identity, theirs: Identity) -> Admit {
    if mine.ensemble == theirs.ensemble {
        Admit::Yes
    } else if mine.empty {
        Admit::Adopt(theirs.ensemble)
    } else if theirs.empty {
        Admit::Yes
    } else {
        Admit::No
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::storage::RealDisk;

    #[test]
    fn the_id_file_round_trips_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(&RealDisk, dir.path()).expect("load"), None);
        for id in [1, 0x1234_5678_9abc_def0, u64::MAX] {
            store(&RealDisk, dir.path(), id).expect("store");
            assert_eq!(load(&RealDisk, dir.path()).expect("load"), Some(id));
        }
        assert_eq!(fs::read_to_string(dir.path().join(ENSEMBLE_ID_FILE)).expect("read"), u64::MAX.to_string());
        fs::write(dir.path().join(ENSEMBLE_ID_FILE), "x1").expect("write");
        let e = load(&RealDisk, dir.path()).expect_err("malformed");
        assert!(e.to_string().contains(ENSEMBLE_ID_FILE), "{e}");
    }

    #[test]
    fn members_of_different_ensembles_that_hold_data_never_link() {
        let held = |ensemble| Identity { ensemble, empty: false };
        let fresh = Identity { ensemble: 0, empty: true };
        // Same ensemble, with or without data.
        assert_eq!(admit(held(7), held(7)), Admit::Yes);
        assert_eq!(admit(held(0), held(0)), Admit::Yes);
        assert_eq!(admit(fresh, fresh), Admit::Yes);
        assert_eq!(admit(fresh, held(0)), Admit::Yes, "a new member of a never-recovered ensemble");
        // A recovered ensemble and an old member with its data, either way round.
        assert_eq!(admit(held(7), held(0)), Admit::No);
        assert_eq!(admit(held(0), held(7)), Admit::No);
        assert_eq!(admit(held(7), held(8)), Admit::No, "two recoveries");
        // A member without data joins a recovered ensemble and takes its id.
        assert_eq!(admit(held(7), fresh), Admit::Yes);
        assert_eq!(admit(fresh, held(7)), Admit::Adopt(7));
    }
}
