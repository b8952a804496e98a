//! Copy-on-write sharing of the model's state between clones of a [`Kernel`](crate::Kernel).
//!
//! An explorer clones a kernel at every branch and runs one step on the copy. A [`Shared`]
//! component is behind an [`Arc`]: cloning it is a reference-count bump, and the first write
//! through a clone copies that component only ([`Arc::make_mut`]), so a step pays for what it
//! touches. Reads and writes look like the plain value's ([`Deref`], [`DerefMut`]).
//!
//! A list whose length a step rarely changes is a `Shared<[T]>`: its elements sit in the
//! [`Arc`]'s own allocation, so a copy is one allocation rather than two (an `Arc<Vec<T>>`'s and
//! its buffer's); a change of length rebuilds it ([`Shared::push`], [`Shared::insert`]).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A value shared between clones until one of them writes it.
pub struct Shared<T: ?Sized>(Arc<T>);

impl<T> Shared<T> {
    /// Wrap `v`.
    pub fn new(v: T) -> Shared<T> {
        Shared(Arc::new(v))
    }
}

impl<T: Clone> Shared<T> {
    /// The value: moved out if no other clone shares it, else copied.
    pub fn unwrap_or_clone(self) -> T {
        Arc::unwrap_or_clone(self.0)
    }
}

impl<T: ?Sized> Shared<T> {
    /// Whether `a` and `b` are the same copy (neither was written since one was cloned from
    /// the other).
    #[inline]
    pub fn ptr_eq(a: &Shared<T>, b: &Shared<T>) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Shared::new(T::default())
    }
}

impl<T: ?Sized> Clone for Shared<T> {
    #[inline]
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Deref for Shared<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    /// The value, copied first if another clone shares it.
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

impl<T: fmt::Debug + ?Sized> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: PartialEq + ?Sized> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

impl<T: Eq + ?Sized> Eq for Shared<T> {}

impl<T> From<T> for Shared<T> {
    fn from(v: T) -> Self {
        Shared::new(v)
    }
}

impl<'a, T: ?Sized> IntoIterator for &'a Shared<T>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        (&*self.0).into_iter()
    }
}

impl<'a, T: Clone> IntoIterator for &'a mut Shared<T>
where
    &'a mut T: IntoIterator,
{
    type Item = <&'a mut T as IntoIterator>::Item;
    type IntoIter = <&'a mut T as IntoIterator>::IntoIter;
    fn into_iter(self) -> Self::IntoIter {
        Arc::make_mut(&mut self.0).into_iter()
    }
}

impl<T: Clone> DerefMut for Shared<[T]> {
    /// The elements, copied first if another clone shares them.
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        Arc::make_mut(&mut self.0)
    }
}

impl<T> Default for Shared<[T]> {
    fn default() -> Self {
        Shared(Arc::from(Vec::new()))
    }
}

impl<T> From<Vec<T>> for Shared<[T]> {
    fn from(v: Vec<T>) -> Self {
        Shared(Arc::from(v))
    }
}

impl<'a, T: Clone> IntoIterator for &'a mut Shared<[T]> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        Arc::make_mut(&mut self.0).iter_mut()
    }
}

impl<T: Clone> Shared<[T]> {
    /// The list with `extra` appended: a new allocation (the length changes).
    pub fn extend(&mut self, extra: impl IntoIterator<Item = T>) {
        let v: Vec<T> = self.0.iter().cloned().chain(extra).collect();
        self.0 = Arc::from(v);
    }
    /// Append `v` (`Vec::push`).
    pub fn push(&mut self, v: T) {
        self.extend(std::iter::once(v));
    }
    /// Insert `v` at `at` (`Vec::insert`).
    pub fn insert(&mut self, at: usize, v: T) {
        let mut all: Vec<T> = Vec::with_capacity(self.0.len() + 1);
        all.extend_from_slice(&self.0[..at]);
        all.push(v);
        all.extend_from_slice(&self.0[at..]);
        self.0 = Arc::from(all);
    }
    /// Remove the element at `at` and return it (`Vec::remove`), `None` past the end.
    pub fn remove(&mut self, at: usize) -> Option<T> {
        let v = self.0.get(at)?.clone();
        let mut rest: Vec<T> = Vec::with_capacity(self.0.len() - 1);
        rest.extend_from_slice(&self.0[..at]);
        rest.extend_from_slice(&self.0[at + 1..]);
        self.0 = Arc::from(rest);
        Some(v)
    }
    /// Remove the last element and return it (`Vec::pop`).
    pub fn pop(&mut self) -> Option<T> {
        self.remove(self.0.len().checked_sub(1)?)
    }
    /// Remove every element (`Vec::clear`).
    pub fn clear(&mut self) {
        if !self.0.is_empty() {
            self.0 = Arc::from(Vec::new());
        }
    }
    /// Keep the elements `keep` selects (`Vec::retain`); nothing is copied if it keeps all.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        if self.0.iter().all(&mut keep) {
            return;
        }
        let v: Vec<T> = self.0.iter().filter(|x| keep(x)).cloned().collect();
        self.0 = Arc::from(v);
    }
}
