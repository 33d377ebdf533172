//! The order services stop in: a channel's producers before its consumer,
//! whatever the registration order; otherwise reverse order of registration.
//!
//! Who sends to and who receives from each channel is known from the
//! builder (`sends_to` / `receives_from`) and from use: a channel end used
//! inside a service's task records that service.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::channel::ChannelShared;
use crate::sync::LockExt;

/// Producer → consumer edges between services (by registration index).
pub(crate) type Edges = BTreeSet<(usize, usize)>;

/// Every producer → consumer edge the channels know of now.
pub(crate) fn edges(channels: &[Arc<ChannelShared>]) -> Edges {
    let mut edges = Edges::new();
    for channel in channels {
        let roles = channel.roles.lock_or_recover();
        for &p in &roles.senders {
            for &c in &roles.receivers {
                edges.insert((p, c));
            }
        }
    }
    edges
}

/// The order to ask `n` services to stop in. Among the services whose
/// producers have all been asked, the one registered last goes first; a
/// cycle (only possible from channel ends used in unexpected places, since
/// declared cycles are refused at build time) is broken the same way.
pub(crate) fn stop_order(n: usize, edges: &Edges, last: &[bool]) -> Vec<usize> {
    // Kahn's algorithm with a max-heap, so that among the free services the
    // one registered last goes first, services that stop last (`last[i]`)
    // after every other free one: O((n + e) log n), which matters for a
    // host of thousands of services. A service that stops last but feeds a
    // channel still stops before that channel's consumer.
    if edges.is_empty() {
        // No channel between services: reverse order of registration, those
        // that stop last at the end. The same order as below, without a heap.
        let last_of = |i: &usize| last.get(*i).copied().unwrap_or(false);
        let (ends, rest): (Vec<usize>, Vec<usize>) = (0..n).rev().partition(last_of);
        return rest.into_iter().chain(ends).collect();
    }
    let mut waiting_on = vec![0usize; n];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(p, c) in edges {
        if p != c && p < n && c < n {
            waiting_on[c] += 1;
            consumers[p].push(c);
        }
    }
    let key = |i: usize| (!last.get(i).copied().unwrap_or(false), i);
    let mut free: std::collections::BinaryHeap<(bool, usize)> =
        (0..n).filter(|&i| waiting_on[i] == 0).map(key).collect();
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let next = match free.pop() {
            Some((_, next)) => next,
            // Only a cycle is left: break it at the service registered last.
            None => match (0..n).rev().find(|&i| !done[i]) {
                Some(next) => next,
                None => break,
            },
        };
        if done[next] {
            continue;
        }
        done[next] = true;
        order.push(next);
        for &c in &consumers[next] {
            waiting_on[c] = waiting_on[c].saturating_sub(1);
            if waiting_on[c] == 0 && !done[c] {
                free.push(key(c));
            }
        }
    }
    order
}

/// A cycle among `edges`, as the services' indices in order, if there is one.
pub(crate) fn find_cycle(n: usize, edges: &Edges) -> Option<Vec<usize>> {
    // Depth-first search with colours: 0 unseen, 1 on the path, 2 finished.
    fn visit(
        node: usize,
        edges: &Edges,
        colour: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        colour[node] = 1;
        path.push(node);
        for &(_, next) in edges
            .iter()
            .filter(|&&(from, to)| from == node && to != node)
        {
            if colour[next] == 1 {
                let start = path.iter().position(|&p| p == next).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(next);
                return Some(cycle);
            }
            if colour[next] == 0 {
                if let Some(cycle) = visit(next, edges, colour, path) {
                    return Some(cycle);
                }
            }
        }
        path.pop();
        colour[node] = 2;
        None
    }
    let mut colour = vec![0u8; n];
    for start in 0..n {
        if colour[start] == 0 {
            if let Some(cycle) = visit(start, edges, &mut colour, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(list: &[(usize, usize)]) -> Edges {
        list.iter().copied().collect()
    }

    #[test]
    fn without_channels_services_stop_in_reverse_order_of_registration() {
        assert_eq!(stop_order(3, &Edges::new(), &[]), [2, 1, 0]);
    }

    #[test]
    fn producers_stop_before_their_consumer_whatever_the_registration_order() {
        // 0 produces for 1: 0 must stop first although it was registered first.
        assert_eq!(stop_order(3, &edges(&[(0, 1)]), &[]), [2, 0, 1]);
        // A pipeline registered backwards: 0 → 1 → 2.
        assert_eq!(stop_order(3, &edges(&[(0, 1), (1, 2)]), &[]), [0, 1, 2]);
    }

    #[test]
    fn services_that_stop_last_go_last_unless_they_feed_a_consumer() {
        // 0 stops last; 1 and 2 are free: 2, 1, then 0.
        assert_eq!(
            stop_order(3, &Edges::new(), &[true, false, false]),
            [2, 1, 0]
        );
        // 0 stops last but feeds 1: 0 goes before 1, after 2.
        assert_eq!(
            stop_order(3, &edges(&[(0, 1)]), &[true, false, false]),
            [2, 0, 1]
        );
    }

    #[test]
    fn a_cycle_is_found_and_still_ordered() {
        let cycle = edges(&[(0, 1), (1, 2), (2, 0)]);
        assert_eq!(find_cycle(3, &cycle), Some(vec![0, 1, 2, 0]));
        assert_eq!(find_cycle(3, &edges(&[(0, 1), (1, 2)])), None);
        assert_eq!(stop_order(3, &cycle, &[]).len(), 3);
    }

    #[test]
    fn a_service_feeding_itself_is_not_a_cycle() {
        assert_eq!(find_cycle(2, &edges(&[(1, 1)])), None);
        assert_eq!(stop_order(2, &edges(&[(1, 1)]), &[]), [1, 0]);
    }

    #[test]
    fn without_edges_the_order_is_the_same_as_through_the_heap() {
        // A self-edge is ignored by the ordering but takes the general path.
        let lasts: [&[bool]; 4] = [
            &[],
            &[false, true, false, false],
            &[true, true, false, true],
            &[false, false, false, true],
        ];
        for last in lasts {
            let direct = stop_order(4, &Edges::new(), last);
            assert_eq!(direct, stop_order(4, &edges(&[(0, 0)]), last), "{last:?}");
        }
        assert_eq!(
            stop_order(4, &Edges::new(), &[false, true, false, false]),
            [3, 2, 0, 1]
        );
    }
}
