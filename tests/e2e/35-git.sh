#!/usr/bin/env bash
# git inside the mount: init, commits, a branch, a merge and gc (locks, renames, hard links, mmap,
# fsync), and a clean fsck and identical history after unmount and mount. Skipped without git.
set -euo pipefail
. "$(dirname "$0")/lib-mount.sh"
if ! command -v git >/dev/null; then
	echo "SKIP: git is not installed"
	exit 0
fi

export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t
export GIT_COMMITTER_EMAIL=t@example.invalid GIT_CONFIG_NOSYSTEM=1 HOME=$T
fs_init
fs_mount
repo=$MNT/repo
git init -q -b main "$repo"
cd "$repo"
for i in $(seq 1 30); do
	mkdir -p "dir$((i % 5))"
	seq "$i" 2000 >"dir$((i % 5))/file$i"
done
git add -A
git commit -q -m "first"
git checkout -q -b side
for i in $(seq 1 10); do echo "side $i" >>"dir1/file$((i % 6 * 5 + 1))"; done
git commit -q -am "side"
git checkout -q main
echo "main change" >>dir0/file5
git commit -q -am "main"
git merge -q --no-edit side
git gc -q
git fsck --full --strict
head=$(git rev-parse HEAD)
log=$(git log --format='%H %s' | sort)
tree=$(git ls-files -s | sha256sum)
cd "$T"
fs_umount

fs_mount
cd "$repo"
git fsck --full --strict
expect_eq "$head" "$(git rev-parse HEAD)" "HEAD after remount"
expect_eq "$log" "$(git log --format='%H %s' | sort)" "history after remount"
expect_eq "$tree" "$(git ls-files -s | sha256sum)" "index after remount"
expect_eq "" "$(git status --porcelain)" "work tree clean after remount"
expect_eq 4 "$(git rev-list --count HEAD)" "number of commits"
cd "$T"
fs_umount
echo ok
