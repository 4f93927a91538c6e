// Package fs is the io.l5d.fs namer: a directory whose files are names.
//
// The file rootDir/hello is the concrete name /#/io.l5d.fs/hello (the mount
// prefix is configurable); sub-directories nest, so rootDir/a/b is
// /#/io.l5d.fs/a/b. A lookup of /hello/rest binds /#/io.l5d.fs/hello with
// residual /rest; a name with no file is negative, so dtab fallbacks apply.
//
// File format, one address per line:
//
//	# comment
//	10.0.0.1 8080
//	10.0.0.2 8080 * 0.5     # weight 0.5 (default 1)
//	localhost 9000          # host names are resolved when the file is read
//
// A malformed line makes the whole name fail, with an error naming the
// file, the line number and its text; nothing is silently dropped.
//
// The directory is watched (fsnotify): files created, changed, deleted or
// renamed into place (editors, atomic writers, Kubernetes ConfigMap
// volumes with their ..data symlink swap) are picked up after a short
// settling delay, turning negative names bound and back. Entries whose
// names start with '.' or end with '~' (editor swap and backup files,
// ConfigMap internals) are not names.
package fs
