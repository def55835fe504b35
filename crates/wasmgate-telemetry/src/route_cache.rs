//! What depends only on a request's route, made once per route and copied after: the SERVER
//! span's name and attributes for the route's pattern, component, executor and method, its
//! children's names, and the same fields of the access line. Written field by field they cost
//! a few hundred instructions on every request; copied, a lookup and one copy.

use crate::record::InvocationRecord;
use std::sync::Arc;

/// Entries kept at most. Each reload's route table brings new names and old entries are only a
/// cache, so a full cache is emptied rather than grown.
const MAX_ENTRIES: usize = 64;

/// Made values (encoded bytes) by route, for one consumer (the span exporter, the access log),
/// which owns it: no lock.
pub struct RouteCache<T = Box<[u8]>> {
    entries: Vec<Entry<T>>,
}

impl<T> Default for RouteCache<T> {
    fn default() -> Self {
        RouteCache {
            entries: Vec::new(),
        }
    }
}

struct Entry<T> {
    /// The names the key's addresses point at, held so that no other string can take their
    /// address while the entry lives.
    names: (Arc<str>, Arc<str>),
    key: [usize; 6],
    made: T,
}

impl<T> RouteCache<T> {
    /// What `make` made for `record`'s route, component, executor and method, plus `extra`:
    /// the addresses of two more `'static` strings it depends on (0 for none). `make` runs the
    /// first time a combination is seen.
    pub fn get(
        &mut self,
        record: &InvocationRecord,
        extra: [Option<&'static str>; 2],
        make: impl FnOnce() -> T,
    ) -> &T {
        let address = |text: Option<&'static str>| text.map_or(0, |t| t.as_ptr() as usize);
        let [route, component, executor, method] = record.name_addresses();
        let key = [
            route,
            component,
            executor,
            method,
            address(extra[0]),
            address(extra[1]),
        ];
        let index = match self.entries.iter().position(|entry| entry.key == key) {
            Some(index) => index,
            None => {
                if self.entries.len() >= MAX_ENTRIES {
                    self.entries.clear();
                }
                self.entries.push(Entry {
                    names: (record.route.clone(), record.component.clone()),
                    key,
                    made: make(),
                });
                self.entries.len() - 1
            }
        };
        let entry = &self.entries[index];
        debug_assert!(Arc::ptr_eq(&entry.names.0, &record.route));
        &entry.made
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(route: &Arc<str>, method: &'static str) -> InvocationRecord {
        InvocationRecord {
            route: route.clone(),
            component: "api".into(),
            executor: "http",
            method,
            ..Default::default()
        }
    }

    #[test]
    fn bytes_are_made_once_per_route_and_extra() {
        let mut cache = RouteCache::default();
        let (a, b): (Arc<str>, Arc<str>) = ("/a".into(), "/b".into());
        let mut made = 0;
        let mut get = |cache: &mut RouteCache, record: &InvocationRecord, extra| {
            cache
                .get(record, [extra, None], || {
                    made += 1;
                    let mut out = Vec::new();
                    out.extend_from_slice(record.route.as_bytes());
                    out.extend_from_slice(record.method.as_bytes());
                    out.extend_from_slice(extra.unwrap_or("-").as_bytes());
                    out.into_boxed_slice()
                })
                .to_vec()
        };
        assert_eq!(get(&mut cache, &record(&a, "GET"), None), b"/aGET-");
        assert_eq!(get(&mut cache, &record(&b, "GET"), None), b"/bGET-");
        assert_eq!(get(&mut cache, &record(&a, "GET"), None), b"/aGET-");
        assert_eq!(get(&mut cache, &record(&a, "POST"), None), b"/aPOST-");
        assert_eq!(get(&mut cache, &record(&a, "GET"), Some("2")), b"/aGET2");
        // A route of the same text from a reload is another entry: names go by address.
        let reloaded: Arc<str> = "/a".into();
        assert_eq!(get(&mut cache, &record(&reloaded, "GET"), None), b"/aGET-");
        assert_eq!(made, 5 + 1);
        assert_eq!(cache.len(), 6);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut cache: RouteCache = RouteCache::default();
        let routes: Vec<Arc<str>> = (0..MAX_ENTRIES + 1)
            .map(|i| Arc::from(format!("/{i}")))
            .collect();
        for route in &routes {
            let bytes = cache.get(&record(route, "GET"), [None, None], || {
                route.as_bytes().into()
            });
            assert_eq!(&**bytes, route.as_bytes());
        }
        assert_eq!(cache.len(), 1);
    }
}
