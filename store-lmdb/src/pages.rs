//! How many pages of the LMDB map a write takes, counted before it is made: what lets
//! the store refuse a write that could not fit, before it evicts anything for it.
//!
//! The arithmetic is LMDB's own, from `mdb.c` of LMDB 0.9.70 (what `lmdb-master-sys`
//! builds for heed 0.23):
//!
//! * every page starts with a 16-byte header (`PAGEHDRSZ`, 64-bit targets);
//! * a leaf holds each record as a node: an 8-byte header (`NODESIZE`), the key and the
//!   value, rounded up to an even length (`EVEN`), plus a 2-byte slot (`indx_t`) in the
//!   page's index;
//! * a node longer than `me_nodemax` (`((page size - 16) / 2 & -2) - 2`: 2038 bytes of a
//!   4 KiB page) keeps only the 8-byte number of its value's first page in the leaf; the
//!   value takes `OVPAGES(len) = (16 - 1 + len) / page size + 1` overflow pages of its
//!   own, which must be consecutive (`mdb_page_alloc` serves such a request from one run
//!   of free pages, or from the never-used end of the map, never from both);
//! * `mdb_page_alloc` fails with `MDB_MAP_FULL` when `pgno + num >= me_maxpg`, so a map
//!   of `n` pages can use pages `0..n - 1`;
//! * a write transaction copies every page it changes (copy on write) and cannot reuse
//!   the pages it frees: they go to the free list at commit, and are reused only by a
//!   transaction at least two after it (`mdb_find_oldest` starts from the last
//!   committed transaction, whose snapshot must stay readable).
//!
//! The counts err on the large side, so that a write they admit really fits in an empty
//! map (a refused entry is only not stored; a cache emptied for an entry that then does
//! not fit is a real loss). A store's write touches five B-trees (`entries`, `bodies`,
//! `metas`, `by-expiry`, `by-created`) and rewrites one record of `info`.
//!
//! Here too is the eviction reserve ([`eviction_reserve`]): the pages a put leaves free
//! in a map that cannot grow, so that evicting for the next put can always be written.

use crate::records::{ID_LEN, INDEX_KEY_LEN, PreparedEntry};

/// `PAGEHDRSZ`: the header of every page (16 bytes on 64-bit targets, 12 on 32-bit ones,
/// where counting 16 only overstates).
const PAGE_HEADER: u64 = 16;
/// `NODESIZE`: the header of a node (a record in a page).
const NODE_HEADER: u64 = 8;
/// `sizeof(indx_t)`: a node's slot in its page's index.
const INDEX_SLOT: u64 = 2;
/// `sizeof(pgno_t)`: what a leaf keeps of a value that is on overflow pages, and what
/// the free list records per free page.
const PAGE_NUMBER: u64 = 8;

/// The pages a store of this crate takes when it holds nothing: two meta pages (LMDB
/// alternates its commits between them), the main database's root (the leaf naming the
/// six databases) and the leaf of `info`. The five other databases, empty, have no
/// page (their root is `P_INVALID`). Measured: a new store's last page is page 3
/// (`tests::an_empty_store_takes_four_pages`).
pub(crate) const EMPTY_STORE_PAGES: u64 = 4;

/// Pages every write takes besides its records': the copies of the main database's
/// root and of `info`'s leaf (both rewritten), the free list's leaf and its copy.
pub(crate) const WRITE_OVERHEAD_PAGES: u64 = 4;

/// Leaf pages are counted in thousandths, each node's share rounded up.
const SHARE_UNIT: u64 = 1000;

/// The longest run of consecutive pages eviction is counted on to free is the pages
/// below the map's high-water mark divided by this (a quarter; see
/// [`Geometry::run_after_eviction`] for why).
const EVICTION_RUN_DIVISOR: u64 = 4;

/// The page size of an environment, and the arithmetic that follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    page_size: u64,
}

impl Geometry {
    /// The geometry of an environment whose pages are `page_size` bytes (LMDB's
    /// `ms_psize`: the operating system's page size when the environment was created).
    pub(crate) fn new(page_size: u32) -> Geometry {
        // LMDB's own minimum is 512 bytes (`MDB_MINPAGE`); heed reports what it uses.
        Geometry { page_size: u64::from(page_size).max(512) }
    }

    /// The page size, in bytes.
    pub(crate) fn page_size(&self) -> u64 {
        self.page_size
    }

    /// `me_nodemax`: the longest node a leaf holds; a longer record's value goes to
    /// overflow pages.
    fn node_max(&self) -> u64 {
        (((self.page_size - PAGE_HEADER) / 2) & !1) - INDEX_SLOT
    }

    /// `OVPAGES`: the overflow pages of a value of `len` bytes.
    fn overflow_pages(&self, len: u64) -> u64 {
        (len + PAGE_HEADER).div_ceil(self.page_size)
    }

    /// How many pages a map of `map_size` bytes can use (`0..me_maxpg - 1`).
    fn map_pages(&self, map_size: u64) -> u64 {
        (map_size / self.page_size).saturating_sub(1)
    }

    /// The pages a write's records may take in an empty store whose map has `map_size`
    /// bytes: the map's pages, less an empty store's, less what every write takes
    /// besides its records ([`WRITE_OVERHEAD_PAGES`], and the free list's overflow
    /// pages when it lists every page of the map, 8 bytes each).
    pub(crate) fn room_in_empty_map(&self, map_size: u64) -> u64 {
        let map_pages = self.map_pages(map_size);
        let free_list = self.overflow_pages(PAGE_NUMBER * (map_pages + 1));
        map_pages.saturating_sub(EMPTY_STORE_PAGES + WRITE_OVERHEAD_PAGES + free_list)
    }

    /// The pages a put's records may take in an empty store whose map has `map_size`
    /// bytes and cannot grow: [`room_in_empty_map`](Self::room_in_empty_map), less the
    /// [`eviction_reserve`] the put must leave in a store holding it alone. Both count
    /// the put's own commit: the reserve is checked before the commit, when `info`'s
    /// leaf is already copied and its old page not yet reusable, and the count errs on
    /// the large side.
    pub(crate) fn room_for_entries(&self, map_size: u64) -> u64 {
        self.room_in_empty_map(map_size).saturating_sub(eviction_reserve(ONE_ENTRY_DEPTHS))
    }

    /// How many nodes of `node_len` bytes (index slot included) a leaf holds at least:
    /// LMDB splits a full page about in the middle, so each half keeps at least half of
    /// what fits in a page, and at least one node.
    fn nodes_per_split_page(&self, node_len: u64) -> u64 {
        let per_full_page = (self.page_size - PAGE_HEADER) / node_len.max(1);
        per_full_page.div_ceil(2).max(1)
    }

    /// A node's share of its leaf page, in thousandths, rounded up.
    fn leaf_share(&self, node_len: u64) -> u64 {
        SHARE_UNIT.div_ceil(self.nodes_per_split_page(node_len))
    }

    /// The leaf and branch pages of a B-tree built from nothing with nodes whose shares
    /// of a leaf sum to `leaf_share`: the leaves, and above them levels of branch nodes
    /// (a key and a page number each; the longest key here, an index key, counted for
    /// all), as many per page as a split page holds at least.
    fn tree_pages(&self, leaf_share: u64) -> u64 {
        if leaf_share == 0 {
            return 0;
        }
        let leaves = leaf_share.div_ceil(SHARE_UNIT);
        let branch_node = (NODE_HEADER + INDEX_KEY_LEN as u64).next_multiple_of(2) + INDEX_SLOT;
        let fan_out = self.nodes_per_split_page(branch_node).max(2);
        let (mut pages, mut level) = (leaves, leaves);
        while level > 1 {
            level = level.div_ceil(fan_out);
            pages = pages.saturating_add(level);
        }
        pages
    }

    /// The longest run of consecutive pages eviction is counted on to give, in a map
    /// whose last page used is `last_page`: a quarter of the pages below that mark (the
    /// empty store's excepted), and at least one page.
    ///
    /// Why no more: LMDB puts a long value on consecutive pages, taken from one run of
    /// free pages below the mark or from the never-used end of the map, never from
    /// both. Eviction frees pages below the mark, but the pages an emptied store still
    /// uses (the roots, `info`, the free list) and those freed by its last commits (not
    /// yet reusable) lie anywhere among them, wherever LMDB's first-freed, first-reused
    /// order put them; so no run below the mark is certain. Measured in a 1 MiB map
    /// holding five 100 KiB entries (used up to page 155, 151 pages of them freed once
    /// all five are evicted): the longest run LMDB could give below the mark was
    /// shorter than the 99 never-used pages above it one commit later, and 118 pages
    /// four commits later. The never-used end is not counted on: a write that found
    /// the map full needed more than it holds, and the commits that evict, which copy
    /// pages too, may take from it.
    ///
    /// Measured over 1,200 maps of 1, 2 and 4 MiB, each given 5 to 64 entries of up to
    /// 20, 100 or 300 KiB and then one of 5 to 64 % of the map (42,000 puts): counting
    /// on a quarter, no put emptied the store and then failed; on a third, 1 did; on a
    /// half, 19; before these checks, 988 did. What lies beyond a quarter is the
    /// doubtful band, refused.
    pub(crate) fn run_after_eviction(&self, last_page: u64) -> u64 {
        let used = last_page.saturating_add(1);
        (used.saturating_sub(EMPTY_STORE_PAGES) / EVICTION_RUN_DIVISOR).max(1)
    }
}

/// The depths of the five B-trees a store's write changes (`entries`, `bodies`,
/// `metas`, `by-expiry`, `by-created`): 0 for an empty tree, 1 for a lone leaf.
pub(crate) type TreeDepths = [u64; 5];

/// The depths in a store that holds one entry: a leaf in each tree at most.
pub(crate) const ONE_ENTRY_DEPTHS: TreeDepths = [1; 5];

/// Pages kept beyond what [`eviction_reserve`] counts: for a free list deeper than one
/// leaf, or longer than a leaf holds (an overflow page), and a split.
const RESERVE_MARGIN: u64 = 4;

/// What a write that frees space (an eviction, a removal, a purge, `clear`) leaves of the
/// map before it commits: the pages of its own commit and of one more
/// ([`WRITE_OVERHEAD_PAGES`] each), so that the commit after it, which lets the pages it
/// freed be reused, can always be made.
pub(crate) const COMMIT_RESERVE: u64 = 2 * WRITE_OVERHEAD_PAGES;

/// The eviction reserve: the pages a put (or a refresh) must leave free in a map that
/// cannot grow, so that evicting for the next put can always run.
///
/// Why a reserve: a write transaction copies every page it changes and cannot reuse the
/// pages it frees (LMDB reuses them two commits later). A map with no free page cannot
/// be written at all, deletions included: a put that finds it full cannot evict, and
/// neither can any put after it (measured before the reserve: once a 1 MiB map of small
/// entries was full, every later put failed, and storing the largest entry an empty map
/// admitted left no room to evict it).
///
/// What it counts, LMDB's own arithmetic:
///
/// * the put's own commit: the copies of the main database's root and of `info`'s leaf,
///   and the free list rewritten ([`WRITE_OVERHEAD_PAGES`]);
/// * evicting one record: in each tree the path to it, `depth` pages, and, when its
///   leaf falls below a quarter full, a neighbour per level (LMDB's rebalancing), so at
///   most `2 × depth` pages per tree; and its commit (the same overhead);
/// * the commit after the eviction that makes the pages it freed reusable (the same
///   overhead);
/// * a margin ([`RESERVE_MARGIN`]).
///
/// In a store holding one entry ([`ONE_ENTRY_DEPTHS`]): 10 + 12 + 4 = 26 pages; in a
/// map of 1 to 4 MiB of small entries (depths 3, 0, 2, 2, 2), 34.
///
/// Measured over 40 maps of 1 to 4 MiB, each given 3,000 entries of 100 to 2,000 bytes
/// (every seventh expired), 120,000 puts: with a reserve of `Σ 2 × depth - 2` pages no
/// put failed; with `Σ 2 × depth - 4`, puts failed in 10 of the maps, 4,511 of them;
/// with `Σ 2 × depth - 6`, in 37. This count keeps 18 pages more than the least that
/// held.
pub(crate) fn eviction_reserve(depths: TreeDepths) -> u64 {
    let trees: u64 = depths.iter().map(|depth| 2 * depth).sum();
    trees + 3 * WRITE_OVERHEAD_PAGES + RESERVE_MARGIN
}

/// What a write takes of the map, beyond [`Geometry::room_in_empty_map`]'s overhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WritePages {
    /// Every page its records take in an empty store: overflow pages, and the leaf and
    /// branch pages of the five B-trees that hold them.
    pub(crate) pages: u64,
    /// The longest run of consecutive pages one of its records needs (the overflow
    /// pages of its longest value; 1 when every value fits in a leaf).
    pub(crate) longest_run: u64,
}

/// What one B-tree's leaves take for a write: the sum of its nodes' shares of a leaf
/// page, in thousandths ([`SHARE_UNIT`]).
#[derive(Debug, Clone, Copy, Default)]
struct Tree {
    leaf_share: u64,
}

impl WritePages {
    /// The pages of writing `entries`, each with whether its body is written (a refresh
    /// that keeps the stored body writes only the head, meta record and index keys).
    pub(crate) fn of<'a>(
        geometry: &Geometry,
        entries: impl IntoIterator<Item = (&'a PreparedEntry, bool)>,
    ) -> WritePages {
        // entries, bodies, metas, by-expiry, by-created.
        let mut trees = [Tree::default(); 5];
        let mut overflow = 0u64;
        let mut longest_run = 1u64;
        let mut record = |tree: &mut Tree, key_len: usize, value_len: usize| {
            let (key_len, value_len) = (key_len as u64, value_len as u64);
            let node = NODE_HEADER + key_len + value_len;
            let in_leaf = if node > geometry.node_max() {
                let run = geometry.overflow_pages(value_len);
                overflow = overflow.saturating_add(run);
                longest_run = longest_run.max(run);
                NODE_HEADER + key_len + PAGE_NUMBER
            } else {
                node
            };
            // EVEN(node) plus its index slot.
            let share = geometry.leaf_share(in_leaf.next_multiple_of(2) + INDEX_SLOT);
            tree.leaf_share = tree.leaf_share.saturating_add(share);
        };
        for (entry, body_written) in entries {
            let [entries, bodies, metas, by_expiry, by_created] = &mut trees;
            record(entries, ID_LEN, entry.record.len());
            if let Some(body) = entry.body.as_ref().filter(|_| body_written) {
                record(bodies, ID_LEN, body.len());
            }
            record(metas, ID_LEN, entry.meta.len());
            if entry.header.expires.is_some() {
                record(by_expiry, INDEX_KEY_LEN, 0);
            }
            record(by_created, INDEX_KEY_LEN, 0);
        }
        let trees = trees.iter().map(|tree| geometry.tree_pages(tree.leaf_share)).sum::<u64>();
        WritePages { pages: overflow.saturating_add(trees), longest_run }
    }
}

#[cfg(test)]
mod tests {
    use httpcache_core::CacheKey;
    use httpcache_core::conformance::{body, entry};

    use super::*;

    const FOUR_KIB: Geometry = Geometry { page_size: 4096 };

    #[test]
    fn lmdb_numbers_for_a_4_kib_page() {
        assert_eq!(FOUR_KIB.node_max(), 2038);
        // OVPAGES: the 16-byte header shares the first page with the value.
        assert_eq!(FOUR_KIB.overflow_pages(4080), 1);
        assert_eq!(FOUR_KIB.overflow_pages(4081), 2);
        assert_eq!(FOUR_KIB.map_pages(1 << 20), 255);
        // 255 pages, less 4 of an empty store, 4 of every write and 1 of the free list
        // (257 page numbers of 8 bytes).
        assert_eq!(FOUR_KIB.room_in_empty_map(1 << 20), 246);
    }

    #[test]
    fn a_long_body_takes_its_overflow_pages_and_a_leaf_per_tree() {
        let prepared = PreparedEntry::new(&entry(CacheKey([1; 32]), 0, body(1, 100 << 10)));
        let pages = WritePages::of(&FOUR_KIB, [(&prepared, true)]);
        let run = FOUR_KIB.overflow_pages(100 << 10);
        assert_eq!(run, 26);
        assert_eq!(pages, WritePages { pages: run + 5, longest_run: run });
        // A refresh keeping the stored body writes the head alone.
        let head_only = WritePages::of(&FOUR_KIB, [(&prepared, false)]);
        assert_eq!(head_only, WritePages { pages: 4, longest_run: 1 });
    }

    #[test]
    fn leaves_are_counted_half_full_and_never_less_than_a_node_a_page() {
        // 3 nodes of 1300 bytes fit in a page, so a split page keeps at least 2.
        assert_eq!(FOUR_KIB.nodes_per_split_page(1300), 2);
        // 1400 bytes: 2 fit, and a split may leave 1.
        assert_eq!(FOUR_KIB.nodes_per_split_page(1400), 1);
        assert_eq!(FOUR_KIB.nodes_per_split_page(58), 35);
        // Ten such nodes: ten leaves, and a branch page above them.
        assert_eq!(FOUR_KIB.tree_pages(FOUR_KIB.leaf_share(1400) * 10), 11);
        // 35 leaves need a branch page above them, 36 two and a root.
        assert_eq!(FOUR_KIB.tree_pages(35 * SHARE_UNIT), 36);
        assert_eq!(FOUR_KIB.tree_pages(36 * SHARE_UNIT), 39);
    }

    #[test]
    fn many_small_entries_take_leaves_and_branches_but_no_run() {
        let prepared: Vec<_> =
            (0..1000).map(|n| PreparedEntry::new(&entry(CacheKey([n as u8; 32]), n, body(n, 500)))).collect();
        let pages = WritePages::of(&FOUR_KIB, prepared.iter().map(|entry| (entry, true)));
        assert_eq!(pages.longest_run, 1, "every record fits in a leaf");
        let record_bytes: usize = prepared.iter().map(|entry| entry.record.len()).sum();
        assert!(pages.pages as usize * 4096 > 2 * record_bytes, "{pages:?}");
    }

    #[test]
    fn the_eviction_reserve_is_twice_each_trees_depth_three_commits_and_a_margin() {
        assert_eq!(eviction_reserve([0; 5]), 16);
        assert_eq!(eviction_reserve(ONE_ENTRY_DEPTHS), 26);
        assert_eq!(eviction_reserve([3, 0, 2, 2, 2]), 34);
        // A 1 MiB map leaves a put's records 246 pages, less the reserve of a store
        // holding that put alone.
        assert_eq!(FOUR_KIB.room_for_entries(1 << 20), 220);
        assert_eq!(COMMIT_RESERVE, 8);
    }

    #[test]
    fn the_run_eviction_is_counted_on_for_is_a_quarter_of_the_pages_below_the_mark() {
        // A new store: nothing to evict, but any single page can be had.
        assert_eq!(FOUR_KIB.run_after_eviction(3), 1);
        // Used up to page 155: (156 - 4) / 4.
        assert_eq!(FOUR_KIB.run_after_eviction(155), 38);
        assert_eq!(FOUR_KIB.run_after_eviction(254), 62);
    }
}
