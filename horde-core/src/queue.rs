//! A priority queue of items owned by keys, whose priorities change at any time.
//!
//! The horde queues requests (items) owned by users (keys); a user's priority is their kudos
//! balance, which changes with every generation. Rescanning a user's requests on every balance
//! change would be wasteful, so the queue is built from the observation that all of one key's
//! items share the key's priority and age at the same rate:
//!
//! * Effective priority of an item = `priority(key) + rate × (now − enqueued_at)`. Every item
//!   ages at the same rate, so ordering by the *score* `priority(key) − rate × enqueued_at` is
//!   the same at every `now`: nothing needs re-sorting as time passes.
//! * Within one key, items are FIFO and the oldest has the best score. A key's items form a
//!   *stream* whose head is its best item; an ordered index holds each key's head only. A
//!   priority change moves one index entry per stream of that key, never the items.
//! * Items may belong to *lanes* (the horde's lanes are model names). Each lane has its own
//!   streams and index, so a search restricted to some lanes never looks at items of others.
//!
//! Searching in priority order merges the streams with a binary heap (a k-way merge), visiting
//! items best first and stopping at the first that satisfies a predicate.
//!
//! Ties: equal scores are served in insertion order (FIFO). Times passed to [`PriorityQueue::push`]
//! are clamped to be non-decreasing per key, which keeps each stream sorted by score; a key's
//! items may be pushed with times ahead of others' (the horde spaces out one user's many
//! requests that way).

use std::collections::{btree_set, BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::hash::Hash;

use crate::Timestamp;

/// The order of an item: better score first, then older (lower sequence number) first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rank {
    score: i128,
    seq: u64,
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.score.cmp(&self.score).then(self.seq.cmp(&other.seq))
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One item's place in a stream.
#[derive(Debug, Clone, Copy)]
struct Entry<I> {
    seq: u64,
    at: u64,
    id: I,
}

#[derive(Debug)]
struct ItemInfo<K, L> {
    key: K,
    ticket: Ticket,
    lanes: Box<[L]>,
}

/// An item's place in line: its insertion sequence number and (clamped) enqueue time. Kept by
/// the caller to put an item back where it was with [`PriorityQueue::reinsert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    seq: u64,
    at: u64,
}

impl Ticket {
    /// The time the item ages from.
    pub fn at(&self) -> Timestamp {
        Timestamp(self.at)
    }
}

/// A key's items: one stream of all of them, and one per lane they are in.
#[derive(Debug)]
struct KeyQueue<L, I> {
    priority: i64,
    all: VecDeque<Entry<I>>,
    lanes: BTreeMap<L, VecDeque<Entry<I>>>,
}

/// Ordered heads of the streams of one lane (or of all items).
type Index<K> = BTreeSet<(Rank, K)>;

/// The outcome of a search: the first matching item, and how many distinct items were looked
/// at (including the match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<I> {
    /// The first item in order that satisfied the predicate.
    pub item: Option<I>,
    /// Distinct items the predicate was asked about.
    pub examined: usize,
}

/// A priority queue of items `I` owned by keys `K`, optionally in lanes `L`.
///
/// Priorities are integers (the horde uses milli-kudos); `ageing_rate` is the priority an item
/// gains per second of waiting. `n` is the number of items, `k` the number of keys with items,
/// `l` the number of lanes of an item or key, `m` a key's number of items.
///
/// ```
/// use horde_core::queue::PriorityQueue;
/// use horde_core::Timestamp;
///
/// let mut q: PriorityQueue<&str, &str, u32> = PriorityQueue::new(0);
/// q.push(1, "poor", -50, ["llama"], Timestamp(0));
/// q.push(2, "rich", 900, ["llama"], Timestamp(1));
/// q.push(3, "rich", 900, ["mistral"], Timestamp(2));
/// assert_eq!(q.find_first(Some(&["llama"]), |_| true).item, Some(2));
/// q.set_priority(&"poor", 1000);
/// assert_eq!(q.find_first(Some(&["llama"]), |_| true).item, Some(1));
/// assert_eq!(q.find_first(None, |id| *id != 1).item, Some(2));
/// assert_eq!(q.position(&3), Some(2));
/// ```
#[derive(Debug)]
pub struct PriorityQueue<K, L, I> {
    ageing_rate: i64,
    next_seq: u64,
    /// The latest time pushed for each key (kept after its items leave, so that a reinserted
    /// item never lands behind a later one of its key with an earlier time).
    last_at: HashMap<K, u64>,
    items: BTreeMap<I, ItemInfo<K, L>>,
    keys: HashMap<K, KeyQueue<L, I>>,
    all: Index<K>,
    lanes: BTreeMap<L, Index<K>>,
}

impl<K, L, I> PriorityQueue<K, L, I>
where
    K: Ord + Hash + Clone,
    L: Ord + Hash + Clone,
    I: Ord + Hash + Copy,
{
    /// An empty queue whose items gain `ageing_rate` priority per second of waiting (negative
    /// rates count as zero).
    pub fn new(ageing_rate: i64) -> Self {
        PriorityQueue {
            ageing_rate: ageing_rate.max(0),
            next_seq: 0,
            last_at: HashMap::new(),
            items: BTreeMap::new(),
            keys: HashMap::new(),
            all: BTreeSet::new(),
            lanes: BTreeMap::new(),
        }
    }

    /// Number of items. O(1).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Returns true if and only if the queue holds no item. O(1).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Returns true if and only if `id` is queued. O(1).
    pub fn contains(&self, id: &I) -> bool {
        self.items.contains_key(id)
    }

    /// Number of items owned by `key`. O(1).
    pub fn key_len(&self, key: &K) -> usize {
        self.keys.get(key).map_or(0, |q| q.all.len())
    }

    /// Number of items in `lane`. O(k) in the keys with items in that lane.
    pub fn lane_len(&self, lane: &L) -> usize {
        self.lanes.get(lane).map_or(0, |index| {
            index
                .iter()
                .filter_map(|(_, key)| self.keys.get(key)?.lanes.get(lane))
                .map(VecDeque::len)
                .sum()
        })
    }

    /// Adds `id`, owned by `key` whose current priority is `priority`, in `lanes`, enqueued at
    /// `now` (or at `key`'s latest time, if that is later). Returns its [`Ticket`] (its place in line), or `None` (and changes nothing) if
    /// `id` is already queued. O(l · log k) amortised.
    pub fn push(
        &mut self,
        id: I,
        key: K,
        priority: i64,
        lanes: impl IntoIterator<Item = L>,
        now: Timestamp,
    ) -> Option<Ticket> {
        if self.items.contains_key(&id) {
            return None;
        }
        let last = self.last_at.entry(key.clone()).or_default();
        let at = now.millis().max(*last);
        *last = at;
        let ticket = Ticket {
            seq: self.next_seq,
            at,
        };
        self.next_seq += 1;
        self.insert(id, key, priority, lanes, ticket);
        Some(ticket)
    }

    /// Puts `id` back in line at the place `ticket` (from [`PriorityQueue::push`] or
    /// [`PriorityQueue::ticket`]) gave it, as if it had never left. Returns false (and changes
    /// nothing) if `id` is already queued. O(l · (log k + m)).
    pub fn reinsert(
        &mut self,
        id: I,
        key: K,
        priority: i64,
        lanes: impl IntoIterator<Item = L>,
        ticket: Ticket,
    ) -> bool {
        if self.items.contains_key(&id) || ticket.seq >= self.next_seq {
            return false;
        }
        self.insert(id, key, priority, lanes, ticket);
        true
    }

    /// The place in line of a queued item.
    pub fn ticket(&self, id: &I) -> Option<Ticket> {
        self.items.get(id).map(|item| item.ticket)
    }

    fn insert(
        &mut self,
        id: I,
        key: K,
        priority: i64,
        lanes: impl IntoIterator<Item = L>,
        ticket: Ticket,
    ) {
        self.set_priority(&key, priority);
        let mut item_lanes: Vec<L> = Vec::new();
        for lane in lanes {
            if !item_lanes.contains(&lane) {
                item_lanes.push(lane);
            }
        }
        let entry = Entry {
            seq: ticket.seq,
            at: ticket.at,
            id,
        };
        let rate = self.ageing_rate;
        let queue = self.keys.entry(key.clone()).or_insert_with(|| KeyQueue {
            priority,
            all: VecDeque::new(),
            lanes: BTreeMap::new(),
        });
        insert_entry(&mut queue.all, &mut self.all, &key, priority, rate, entry);
        for lane in &item_lanes {
            let stream = queue.lanes.entry(lane.clone()).or_default();
            let index = self.lanes.entry(lane.clone()).or_default();
            insert_entry(stream, index, &key, priority, rate, entry);
        }
        self.items.insert(
            id,
            ItemInfo {
                key,
                ticket,
                lanes: item_lanes.into_boxed_slice(),
            },
        );
    }

    /// Removes `id`; returns its key, or `None` if it was not queued.
    /// O(l · (log k + m)) — `m` for shifting within the key's streams, which are short (a
    /// user's queued requests are bounded by their concurrency).
    pub fn remove(&mut self, id: &I) -> Option<K> {
        let item = self.items.remove(id)?;
        let rate = self.ageing_rate;
        let queue = self.keys.get_mut(&item.key)?;
        let priority = queue.priority;
        take(
            &mut queue.all,
            &mut self.all,
            &item.key,
            priority,
            rate,
            item.ticket.seq,
        );
        for lane in item.lanes.iter() {
            let (Some(stream), Some(index)) = (queue.lanes.get_mut(lane), self.lanes.get_mut(lane))
            else {
                continue;
            };
            take(stream, index, &item.key, priority, rate, item.ticket.seq);
            if stream.is_empty() {
                queue.lanes.remove(lane);
            }
            if index.is_empty() {
                self.lanes.remove(lane);
            }
        }
        if queue.all.is_empty() {
            self.keys.remove(&item.key);
        }
        Some(item.key)
    }

    /// Sets the priority of `key` (no effect if it owns no item). O(l · log k): one index entry
    /// moves per stream of the key, whatever its number of items.
    pub fn set_priority(&mut self, key: &K, priority: i64) {
        let Some(queue) = self.keys.get_mut(key) else {
            return;
        };
        if queue.priority == priority {
            return;
        }
        let rate = self.ageing_rate;
        let old = queue.priority;
        rekey(&queue.all, &mut self.all, key, old, priority, rate);
        for (lane, stream) in &queue.lanes {
            if let Some(index) = self.lanes.get_mut(lane) {
                rekey(stream, index, key, old, priority, rate);
            }
        }
        queue.priority = priority;
    }

    /// The priority of `key`, if it owns items. O(1).
    pub fn priority(&self, key: &K) -> Option<i64> {
        self.keys.get(key).map(|q| q.priority)
    }

    /// The first item in priority order — among items in any of `lanes`, or all items for
    /// `None` — for which `pred` returns true. Each distinct item is offered once.
    ///
    /// O((e + l) · log(k + e)) where `e` is the number of items examined: a search whose
    /// lanes hold nothing costs O(l), however many items other lanes hold.
    pub fn find_first(&self, lanes: Option<&[L]>, pred: impl FnMut(&I) -> bool) -> Found<I> {
        let mut search = Search::new(self, |priority, entry| {
            rank(priority, self.ageing_rate, entry)
        });
        match lanes {
            None => search.add_index(None, &self.all),
            Some(lanes) => {
                for lane in lanes {
                    if let Some(index) = self.lanes.get(lane) {
                        search.add_index(Some(lane), index);
                    }
                }
            }
        }
        search.run(pred)
    }

    /// The oldest item of any of `keys` — in any of `lanes`, or in all for `None` — for which
    /// `pred` returns true, whatever the keys' priorities.
    /// O((e + |keys| · l) · log(|keys| · l + e)).
    pub fn find_first_of_keys(
        &self,
        keys: &[K],
        lanes: Option<&[L]>,
        pred: impl FnMut(&I) -> bool,
    ) -> Found<I> {
        let mut search = Search::new(self, |_, entry| Rank {
            score: 0,
            seq: entry.seq,
        });
        // Each key walks the shorter of its own lanes and the wanted ones, so many keys with
        // few lanes each, searched for a worker of many models, cost O(Σ min(l_k, l)).
        let wanted: Option<HashSet<&L>> = lanes.map(|lanes| lanes.iter().collect());
        for key in keys {
            let Some(queue) = self.keys.get(key) else {
                continue;
            };
            match (lanes, &wanted) {
                (Some(lanes), Some(wanted)) if lanes.len() <= queue.lanes.len() => {
                    for lane in lanes {
                        if let Some(stream) = queue.lanes.get(lane) {
                            search.add_stream(queue.priority, stream);
                        }
                    }
                }
                (Some(_), Some(wanted)) => {
                    for (lane, stream) in &queue.lanes {
                        if wanted.contains(lane) {
                            search.add_stream(queue.priority, stream);
                        }
                    }
                }
                _ => search.add_stream(queue.priority, &queue.all),
            }
        }
        search.run(pred)
    }

    /// How many items are ahead of `id` in priority order (0 for the first), or `None` if it is
    /// not queued. O(k' · log m) where `k'` is the number of keys with an item ahead.
    pub fn position(&self, id: &I) -> Option<usize> {
        let item = self.items.get(id)?;
        let queue = self.keys.get(&item.key)?;
        let entry = Entry {
            seq: item.ticket.seq,
            at: item.ticket.at,
            id: *id,
        };
        let target = rank(queue.priority, self.ageing_rate, &entry);
        let mut ahead = 0;
        for (head, key) in &self.all {
            if *head >= target {
                break;
            }
            if let Some(q) = self.keys.get(key) {
                ahead += q
                    .all
                    .partition_point(|e| rank(q.priority, self.ageing_rate, e) < target);
            }
        }
        Some(ahead)
    }
}

fn rank<I>(priority: i64, rate: i64, entry: &Entry<I>) -> Rank {
    Rank {
        score: i128::from(priority) * 1000 - i128::from(rate) * i128::from(entry.at),
        seq: entry.seq,
    }
}

/// Inserts `entry` into a stream in sequence order, re-indexing the stream if it becomes its
/// head. O(log m) to append, O(m) to insert in the middle.
fn insert_entry<K: Ord + Clone, I: Copy>(
    stream: &mut VecDeque<Entry<I>>,
    index: &mut Index<K>,
    key: &K,
    priority: i64,
    rate: i64,
    entry: Entry<I>,
) {
    let pos = stream.partition_point(|e| e.seq < entry.seq);
    if pos == 0 {
        if let Some(head) = stream.front() {
            index.remove(&(rank(priority, rate, head), key.clone()));
        }
        index.insert((rank(priority, rate, &entry), key.clone()));
    }
    stream.insert(pos, entry);
}

/// Removes the entry `seq` from a stream, re-indexing the stream if its head changed.
fn take<K: Ord + Clone, I: Copy>(
    stream: &mut VecDeque<Entry<I>>,
    index: &mut Index<K>,
    key: &K,
    priority: i64,
    rate: i64,
    seq: u64,
) {
    let Ok(pos) = stream.binary_search_by_key(&seq, |e| e.seq) else {
        return;
    };
    if pos == 0 {
        index.remove(&(rank(priority, rate, &stream[0]), key.clone()));
    }
    stream.remove(pos);
    if pos == 0 {
        if let Some(head) = stream.front() {
            index.insert((rank(priority, rate, head), key.clone()));
        }
    }
}

/// Moves a stream's index entry from priority `old` to `new`.
fn rekey<K: Ord + Clone, I>(
    stream: &VecDeque<Entry<I>>,
    index: &mut Index<K>,
    key: &K,
    old: i64,
    new: i64,
    rate: i64,
) {
    if let Some(head) = stream.front() {
        index.remove(&(rank(old, rate, head), key.clone()));
        index.insert((rank(new, rate, head), key.clone()));
    }
}

/// A position in a stream, ordered by rank for the merge heap (best on top).
struct Cursor<'a, I> {
    rank: Rank,
    stream: &'a VecDeque<Entry<I>>,
    pos: usize,
    priority: i64,
    /// The index iterator this stream's head came from, to be advanced when it is taken.
    from_index: Option<usize>,
}

impl<I> PartialEq for Cursor<'_, I> {
    fn eq(&self, other: &Self) -> bool {
        self.rank == other.rank
    }
}
impl<I> Eq for Cursor<'_, I> {}
impl<I> PartialOrd for Cursor<'_, I> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<I> Ord for Cursor<'_, I> {
    /// Reversed, so that `BinaryHeap` (a max-heap) yields the best rank first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.rank.cmp(&self.rank)
    }
}

/// An index being walked: its lane (`None` for all items) and where the walk is.
type IndexCursor<'a, K, L> = (Option<&'a L>, btree_set::Iter<'a, (Rank, K)>);

/// A k-way merge over streams, fed lazily from indexes of stream heads.
struct Search<'a, K, L, I, R> {
    queue: &'a PriorityQueue<K, L, I>,
    rank_of: R,
    heap: BinaryHeap<Cursor<'a, I>>,
    indexes: Vec<IndexCursor<'a, K, L>>,
}

impl<'a, K, L, I, R> Search<'a, K, L, I, R>
where
    K: Ord + Hash + Clone,
    L: Ord + Hash + Clone,
    I: Ord + Hash + Copy,
    R: Fn(i64, &Entry<I>) -> Rank,
{
    fn new(queue: &'a PriorityQueue<K, L, I>, rank_of: R) -> Self {
        Search {
            queue,
            rank_of,
            heap: BinaryHeap::new(),
            indexes: Vec::new(),
        }
    }

    fn add_stream(&mut self, priority: i64, stream: &'a VecDeque<Entry<I>>) {
        self.push_cursor(priority, stream, 0, None);
    }

    fn add_index(&mut self, lane: Option<&'a L>, index: &'a Index<K>) {
        if lane.is_some() && self.indexes.iter().any(|(l, _)| *l == lane) {
            return;
        }
        self.indexes.push((lane, index.iter()));
        self.advance_index(self.indexes.len() - 1);
    }

    fn advance_index(&mut self, i: usize) {
        let (lane, iter) = &mut self.indexes[i];
        let Some((_, key)) = iter.next() else {
            return;
        };
        let Some(queue) = self.queue.keys.get(key) else {
            return;
        };
        let stream = match lane {
            None => Some(&queue.all),
            Some(lane) => queue.lanes.get(*lane),
        };
        if let Some(stream) = stream {
            self.push_cursor(queue.priority, stream, 0, Some(i));
        }
    }

    fn push_cursor(
        &mut self,
        priority: i64,
        stream: &'a VecDeque<Entry<I>>,
        pos: usize,
        from_index: Option<usize>,
    ) {
        if let Some(entry) = stream.get(pos) {
            self.heap.push(Cursor {
                rank: (self.rank_of)(priority, entry),
                stream,
                pos,
                priority,
                from_index,
            });
        }
    }

    fn run(mut self, mut pred: impl FnMut(&I) -> bool) -> Found<I> {
        let mut seen = HashSet::new();
        let mut examined = 0;
        while let Some(cursor) = self.heap.pop() {
            if let Some(i) = cursor.from_index {
                self.advance_index(i);
            }
            self.push_cursor(cursor.priority, cursor.stream, cursor.pos + 1, None);
            let id = cursor.stream[cursor.pos].id;
            if !seen.insert(id) {
                continue;
            }
            examined += 1;
            if pred(&id) {
                return Found {
                    item: Some(id),
                    examined,
                };
            }
        }
        Found {
            item: None,
            examined,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Q = PriorityQueue<u8, u8, u32>;

    fn order(q: &Q, lanes: Option<&[u8]>) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(id) = q.find_first(lanes, |id| !out.contains(id)).item {
            out.push(id);
        }
        out
    }

    #[test]
    fn accessors_count_items_keys_and_priorities() {
        let mut q = Q::new(0);
        assert!(q.is_empty());
        assert_eq!(q.priority(&1), None);
        q.push(1, 7, 30, [0], Timestamp(0));
        q.push(2, 7, 30, [1], Timestamp(1));
        assert!(!q.is_empty());
        assert_eq!(q.key_len(&7), 2);
        assert_eq!(q.key_len(&8), 0);
        assert_eq!(q.priority(&7), Some(30));
    }

    #[test]
    fn a_keys_search_keeps_to_the_wanted_lanes() {
        let mut q = Q::new(0);
        // Key 5 has an older item in lane 2 and a newer one in lane 1.
        q.push(1, 5, 0, [2], Timestamp(0));
        q.push(2, 5, 0, [1], Timestamp(1));
        // Fewer wanted lanes than the key has, and more: both find only lane 1's item.
        assert_eq!(
            q.find_first_of_keys(&[5], Some(&[1]), |_| true).item,
            Some(2)
        );
        assert_eq!(
            q.find_first_of_keys(&[5], Some(&[1, 3, 4]), |_| true).item,
            Some(2)
        );
        assert_eq!(q.find_first_of_keys(&[5], None, |_| true).item, Some(1));
        assert_eq!(q.find_first_of_keys(&[6], None, |_| true).item, None);
    }

    #[test]
    fn higher_priority_first_then_fifo() {
        let mut q = Q::new(0);
        q.push(1, 1, 10, [0], Timestamp(0));
        q.push(2, 2, 20, [0], Timestamp(1));
        q.push(3, 1, 10, [0], Timestamp(2));
        q.push(4, 3, 10, [0], Timestamp(3));
        assert_eq!(order(&q, None), vec![2, 1, 3, 4]);
        assert_eq!(q.position(&1), Some(1));
        assert_eq!(q.position(&4), Some(3));
    }

    #[test]
    fn priority_change_reorders_without_touching_items() {
        let mut q = Q::new(0);
        for i in 0..5 {
            q.push(i, 1, 0, [0], Timestamp(u64::from(i)));
        }
        q.push(10, 2, 5, [0], Timestamp(10));
        assert_eq!(order(&q, None)[0], 10);
        q.set_priority(&1, 6);
        assert_eq!(order(&q, None), vec![0, 1, 2, 3, 4, 10]);
        assert_eq!(q.position(&10), Some(5));
    }

    #[test]
    fn ageing_lets_old_requests_overtake() {
        // 1 unit of priority per second.
        let mut q = Q::new(1);
        q.push(1, 1, 0, [0], Timestamp::from_secs(0));
        q.push(2, 2, 50, [0], Timestamp::from_secs(100));
        // Item 1 waited 100 s longer: 0 + 100 > 50.
        assert_eq!(order(&q, None), vec![1, 2]);
        q.set_priority(&2, 150);
        assert_eq!(order(&q, None), vec![2, 1]);
    }

    #[test]
    fn lanes_restrict_and_deduplicate() {
        let mut q = Q::new(0);
        q.push(1, 1, 0, [7, 8], Timestamp(0));
        q.push(2, 2, 0, [8], Timestamp(1));
        q.push(3, 3, 0, [9], Timestamp(2));
        assert_eq!(order(&q, Some(&[7])), vec![1]);
        assert_eq!(order(&q, Some(&[7, 8])), vec![1, 2]);
        let found = q.find_first(Some(&[7, 8, 8]), |_| false);
        assert_eq!(found.examined, 2);
        assert_eq!(q.find_first(Some(&[42]), |_| true).item, None);
        assert_eq!(q.lane_len(&8), 2);
        q.remove(&1);
        assert_eq!(order(&q, Some(&[7, 8])), vec![2]);
        assert_eq!(q.lane_len(&7), 0);
    }

    #[test]
    fn keys_search_is_oldest_first_whatever_priority() {
        let mut q = Q::new(0);
        q.push(1, 1, 100, [0], Timestamp(0));
        q.push(2, 2, -100, [0], Timestamp(1));
        q.push(3, 3, -500, [0], Timestamp(2));
        q.push(4, 2, -100, [0], Timestamp(3));
        assert_eq!(q.find_first_of_keys(&[3, 2], None, |_| true).item, Some(2));
        assert_eq!(
            q.find_first_of_keys(&[3, 2], Some(&[0]), |i| *i != 2).item,
            Some(3)
        );
        assert_eq!(q.find_first_of_keys(&[9], None, |_| true).item, None);
    }

    #[test]
    fn duplicate_push_and_missing_remove_are_refused() {
        let mut q = Q::new(0);
        assert!(q.push(1, 1, 0, [0], Timestamp(0)).is_some());
        assert!(q.push(1, 2, 0, [0], Timestamp(0)).is_none());
        assert_eq!(q.remove(&2), None);
        assert_eq!(q.remove(&1), Some(1));
        assert!(q.is_empty());
        assert_eq!(q.priority(&1), None);
        assert_eq!(q.position(&1), None);
    }

    #[test]
    fn reinsert_restores_the_place_in_line() {
        let mut q = Q::new(1);
        q.push(1, 1, 0, [0], Timestamp(0));
        q.push(2, 1, 0, [0], Timestamp(1000));
        q.push(3, 2, 0, [0], Timestamp(2000));
        let ticket = q.ticket(&1).unwrap();
        q.remove(&1);
        assert_eq!(order(&q, None), vec![2, 3]);
        assert!(q.reinsert(1, 1, 0, [0], ticket));
        assert!(!q.reinsert(1, 1, 0, [0], ticket));
        assert_eq!(order(&q, None), vec![1, 2, 3]);
        assert_eq!(q.position(&1), Some(0));
        // A ticket the queue never issued is refused.
        let bogus = Ticket { seq: 99, at: 0 };
        assert!(!q.reinsert(9, 1, 0, [0], bogus));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push {
            key: u8,
            lane: u8,
            dt: u16,
            ahead: u16,
        },
        Remove(usize),
        Reinsert(usize),
        SetPriority {
            key: u8,
            priority: i16,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                0..6u8,
                0..3u8,
                0..500u16,
                prop_oneof![Just(0u16), 0..2000u16]
            )
                .prop_map(|(key, lane, dt, ahead)| Op::Push {
                    key,
                    lane,
                    dt,
                    ahead
                }),
            any::<usize>().prop_map(Op::Remove),
            any::<usize>().prop_map(Op::Reinsert),
            (0..6u8, -100..100i16).prop_map(|(key, priority)| Op::SetPriority { key, priority }),
        ]
    }

    proptest! {
        /// The queue agrees with a naive model that sorts every item by effective priority.
        #[test]
        fn matches_a_naive_model(ops in prop::collection::vec(op(), 1..80), rate in 0..3i64) {
            let mut q = Q::new(rate);
            // (id, key, lane, at)
            let mut model: Vec<(u32, u8, u8, u64)> = Vec::new();
            let mut removed: Vec<((u32, u8, u8, u64), Ticket)> = Vec::new();
            let mut priorities = [0i64; 6];
            let mut last_at = [0u64; 6];
            let mut now = 0u64;
            let mut next_id = 0u32;
            for op in ops {
                match op {
                    Op::Push { key, lane, dt, ahead } => {
                        now += u64::from(dt);
                        let at = (now + u64::from(ahead)).max(last_at[key as usize]);
                        last_at[key as usize] = at;
                        q.push(next_id, key, priorities[key as usize], [lane], Timestamp(now + u64::from(ahead)));
                        model.push((next_id, key, lane, at));
                        next_id += 1;
                    }
                    Op::Remove(i) if !model.is_empty() => {
                        let item = model.remove(i % model.len());
                        let ticket = q.ticket(&item.0).unwrap();
                        prop_assert!(q.remove(&item.0).is_some());
                        removed.push((item, ticket));
                    }
                    Op::Remove(_) => {}
                    Op::Reinsert(i) if !removed.is_empty() => {
                        let (item, ticket) = removed.remove(i % removed.len());
                        let (id, key, lane, _) = item;
                        prop_assert!(q.reinsert(id, key, priorities[key as usize], [lane], ticket));
                        model.push(item);
                    }
                    Op::Reinsert(_) => {}
                    Op::SetPriority { key, priority } => {
                        priorities[key as usize] = i64::from(priority);
                        q.set_priority(&key, i64::from(priority));
                    }
                }
                let score = |&(_, key, _, at): &(u32, u8, u8, u64)| {
                    i128::from(priorities[key as usize]) * 1000 - i128::from(rate) * i128::from(at)
                };
                let mut expected = model.clone();
                expected.sort_by_key(|e| e.0);
                // Stable sort keeps insertion order among equal scores.
                expected.sort_by_key(|e| std::cmp::Reverse(score(e)));
                let ids: Vec<u32> = expected.iter().map(|e| e.0).collect();
                prop_assert_eq!(order(&q, None), ids.clone());
                for (pos, id) in ids.iter().enumerate() {
                    prop_assert_eq!(q.position(id), Some(pos));
                }
                let lane1: Vec<u32> = expected.iter().filter(|e| e.2 == 1).map(|e| e.0).collect();
                prop_assert_eq!(order(&q, Some(&[1])), lane1);
                prop_assert_eq!(q.len(), model.len());
            }
        }
    }
}
