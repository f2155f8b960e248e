#!/bin/sh
# Prints the Debian package version of the checkout, from `git describe
# --tags`, so that dpkg orders builds the way they were made:
#
#   tag v1.2.0                    -> 1.2.0
#   3 commits after v1.2.0        -> 1.2.0+git3.g1a2b3c4   (above 1.2.0, below 1.2.1)
#   tag v1.3.0-rc1                -> 1.3.0~rc1             (below 1.3.0)
#   no tag yet                    -> 0.0.0~git20261206171110.1a2b3c4
#                                    (HEAD's commit time, UTC: later commits sort higher,
#                                    and every one below 0.0.0 and any release)
#   uncommitted changes           -> the above, then +dirty
set -eu
cd "$(dirname "$0")/.."

dirty=
if ! git diff --quiet HEAD -- 2>/dev/null; then
	dirty=+dirty
fi
if desc=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
	# v1.2.0-rc1-3-g1a2b3c4: tag, commits since, abbreviated hash.
	hash=${desc##*-}
	rest=${desc%-*}
	count=${rest##*-}
	tag=${rest%-*}
	version=$(printf '%s' "${tag#v}" | sed 's/-/~/g')
	if [ "$count" != 0 ]; then
		version="$version+git$count.$hash"
	fi
else
	when=$(TZ=UTC0 git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
	version="0.0.0~git$when.$(git rev-parse --short=7 HEAD)"
fi
# Debian allows letters, digits and . + ~ here (no hyphen: no revision).
case "$version$dirty" in
*[!A-Za-z0-9.+~]*)
	echo "version.sh: cannot make a Debian version of $version$dirty" >&2
	exit 1
	;;
esac
printf '%s%s\n' "$version" "$dirty"
