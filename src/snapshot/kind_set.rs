//! [`KindSet`]: a set of [`Kind`]s as a bit set (`Copy`, no allocation), in
//! [`Kind`] order — what a check reads, what a family may see.
use super::Kind;

/// A set of kinds. Iterates in [`Kind`] (declaration) order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KindSet(u64);

impl KindSet {
    /// The empty set.
    pub const fn new() -> Self {
        KindSet(0)
    }

    fn bit(kind: Kind) -> u64 {
        1 << (kind as u32)
    }

    /// Adds `kind`; returns whether it was absent.
    pub fn insert(&mut self, kind: Kind) -> bool {
        let absent = !self.contains(&kind);
        self.0 |= Self::bit(kind);
        absent
    }

    /// Removes `kind`; returns whether it was present.
    pub fn remove(&mut self, kind: &Kind) -> bool {
        let present = self.contains(kind);
        self.0 &= !Self::bit(*kind);
        present
    }

    /// Whether `kind` is in the set.
    pub fn contains(&self, kind: &Kind) -> bool {
        self.0 & Self::bit(*kind) != 0
    }

    /// Whether every kind of `other` is in this set.
    pub fn is_superset(&self, other: &KindSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Number of kinds.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// True when the set holds no kind.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The kinds, in [`Kind`] order.
    pub fn iter(&self) -> Iter {
        Iter(self.0)
    }
}

/// The kinds of a [`KindSet`], in [`Kind`] order.
#[derive(Clone, Debug)]
pub struct Iter(u64);

impl Iterator for Iter {
    type Item = Kind;
    fn next(&mut self) -> Option<Kind> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Kind::ALL.get(i as usize).copied()
    }
}

impl std::fmt::Debug for KindSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Kind> for KindSet {
    fn from_iter<I: IntoIterator<Item = Kind>>(iter: I) -> Self {
        let mut s = KindSet::new();
        s.extend(iter);
        s
    }
}

impl Extend<Kind> for KindSet {
    fn extend<I: IntoIterator<Item = Kind>>(&mut self, iter: I) {
        for k in iter {
            self.insert(k);
        }
    }
}

impl<const N: usize> From<[Kind; N]> for KindSet {
    fn from(kinds: [Kind; N]) -> Self {
        kinds.into_iter().collect()
    }
}

impl IntoIterator for KindSet {
    type Item = Kind;
    type IntoIter = Iter;
    fn into_iter(self) -> Iter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_set_holds_every_kind_once_in_kind_order() {
        assert!(Kind::ALL.len() <= 64, "KindSet is a u64 bit set");
        let mut s = KindSet::from([Kind::VolumeSnapshot, Kind::Namespace]);
        assert!(s.insert(Kind::Pod));
        assert!(!s.insert(Kind::Pod));
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            [Kind::Namespace, Kind::Pod, Kind::VolumeSnapshot]
        );
        assert!(s.contains(&Kind::Pod) && !s.contains(&Kind::Role));
        assert!(s.remove(&Kind::Pod) && !s.contains(&Kind::Pod));
        assert_eq!(s.len(), 2);
        let all: KindSet = Kind::ALL.into_iter().collect();
        assert_eq!(all.len(), Kind::ALL.len());
        assert!(all.is_superset(&s) && !s.is_superset(&all));
    }
}
