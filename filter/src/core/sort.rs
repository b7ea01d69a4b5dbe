//! The module's one stable sort. `slice::sort_by` is compiled anew for every element type and
//! comparison it is called with: each copy of the standard library's driftsort (its run
//! detection, merges, small-sort networks and pivot selection) was about 5 KB of module, 40 KB
//! over its eight callers, and every byte is compiled by V8 in each Envoy at load. What the filter
//! sorts is small (an object's members, a page of tasks, a few index names), so here the
//! per-type part is an insertion sort of a few dozen bytes of code, and a longer list is ordered
//! by one merge sort of positions, compiled once for all types.

use std::cmp::Ordering;

/// Up to this many items, insertion sort: fewer comparisons than merging positions, and no
/// allocation (a JSON object's members nearly always fit).
const INSERTION_MAX: usize = 16;

/// Sorts `items` by `order`, keeping equal items in the order they came in.
pub fn sort_by<T>(items: &mut Vec<T>, mut order: impl FnMut(&T, &T) -> Ordering) {
    if items.len() <= INSERTION_MAX {
        insertion_sort(items, &mut order);
        return;
    }
    let positions = merge_order(items.len(), &mut |a, b| match (items.get(a), items.get(b)) {
        (Some(left), Some(right)) => order(left, right) == Ordering::Greater,
        _ => false,
    });
    let mut taken: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(positions.into_iter().filter_map(|at| taken.get_mut(at).and_then(Option::take)));
}

/// Sorts `items` by the key `key` gives each, stably.
pub fn sort_by_key<T, K: Ord>(items: &mut Vec<T>, mut key: impl FnMut(&T) -> K) {
    sort_by(items, |left, right| key(left).cmp(&key(right)));
}

/// Sorts `items` and drops repeats: the set of them, in order.
pub fn sort_dedup<T: Ord>(items: &mut Vec<T>) {
    sort_by(items, T::cmp);
    items.dedup();
}

/// An item moves left only past items that go strictly after it, so equal items keep their order.
fn insertion_sort<T>(items: &mut [T], order: &mut impl FnMut(&T, &T) -> Ordering) {
    for end in 1..items.len() {
        let mut at = end;
        while at > 0 {
            let out_of_order = match (items.get(at - 1), items.get(at)) {
                (Some(left), Some(right)) => order(left, right) == Ordering::Greater,
                _ => false,
            };
            if !out_of_order {
                break;
            }
            items.swap(at - 1, at);
            at -= 1;
        }
    }
}

/// The positions `0..count` in sorted order, where `after(a, b)` says the item at `a` goes
/// strictly after the one at `b`: a bottom-up merge sort, taking from the left run on ties.
fn merge_order(count: usize, after: &mut dyn FnMut(usize, usize) -> bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    let mut width = 1usize;
    while width < count {
        let mut merged = Vec::with_capacity(count);
        for run in order.chunks(width.saturating_mul(2)) {
            let (left, right) = run.split_at_checked(width).unwrap_or((run, &[]));
            let (mut left, mut right) = (left.iter().copied().peekable(), right.iter().copied().peekable());
            while let (Some(&l), Some(&r)) = (left.peek(), right.peek()) {
                if after(l, r) {
                    merged.push(r);
                    right.next();
                } else {
                    merged.push(l);
                    left.next();
                }
            }
            merged.extend(left);
            merged.extend(right);
        }
        order = merged;
        width = width.saturating_mul(2);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_short_and_long_lists_stably() {
        for len in [0usize, 1, 2, 5, 16, 17, 40, 333] {
            // Keys repeat (mod 7) so stability shows: the tag records the original position.
            let mut items: Vec<(u32, usize)> = (0..len).map(|i| (((i * 5) % 7) as u32, i)).rev().collect();
            let mut expected = items.clone();
            expected.sort_by_key(|a| a.0);
            sort_by(&mut items, |a, b| a.0.cmp(&b.0));
            assert_eq!(items, expected, "len {len}");
        }
    }

    #[test]
    fn sort_by_key_and_sort_dedup() {
        let mut uids = vec![3u64, 9, 1, 7];
        sort_by_key(&mut uids, |u| std::cmp::Reverse(*u));
        assert_eq!(uids, [9, 7, 3, 1]);
        let mut names: Vec<String> = ["b", "a", "c", "a", "b"].into_iter().map(String::from).collect();
        sort_dedup(&mut names);
        assert_eq!(names, ["a", "b", "c"]);
    }
}
