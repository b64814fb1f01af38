//! Cache inspection over any store: count, list, filter, sort, delete, copy.
