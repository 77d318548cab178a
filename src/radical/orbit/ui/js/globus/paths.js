// Globus paths as the panes use them: a folder's path always ends with "/".

/** "/a/b/" + "c" -> "/a/b/c" (paths of folders always end with "/"). */
export function joinPath(dir, name) {
  return (dir.endsWith("/") ? dir : `${dir}/`) + name;
}

export function parentPath(path) {
  const trimmed = path.replace(/\/+$/, "");
  if (!trimmed) return "/";
  const cut = trimmed.lastIndexOf("/");
  return cut <= 0 ? "/" : `${trimmed.slice(0, cut)}/`;
}

export function normalizeDir(path) {
  const p = path.trim() || "/~/";
  return p.endsWith("/") ? p : `${p}/`;
}
