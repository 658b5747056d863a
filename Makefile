# es_pg: build, install and test with PGXS.
#
#   make                    build the module and the install script
#   make install            install into the PostgreSQL that PG_CONFIG names
#   make installcheck       regression, isolation and TAP tests against a
#                           running server (scripts/test.sh sets one up)
#
# New C files, SQL fragments and tests are picked up by name; see README.md.

EXTENSION	= es_pg
EXTVERSION	= $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big	= es_pg
OBJS		= $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script of the current version is assembled from the fragments
# in sql/src/, in name order.  Upgrade scripts (es_pg--A--B.sql) are written
# by hand and never regenerated.
SQL_SOURCES	= $(sort $(wildcard sql/src/*.sql))
DATA_built	= sql/$(EXTENSION)--$(EXTVERSION).sql
DATA		= $(wildcard sql/$(EXTENSION)--*--*.sql)

# Regression tests: test/sql/<name>.sql with test/expected/<name>.out.
REGRESS		= $(sort $(basename $(notdir $(wildcard test/sql/*.sql))))
REGRESS_OPTS = --inputdir=test
# Isolation specs: test/specs/<name>.spec with test/expected/<name>.out.
ISOLATION	= $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test
# TAP tests: test/t/*.pl, each with clusters of its own.
TAP_TESTS	= 1
PROVE_TESTS	= $(sort $(wildcard test/t/*.pl))

EXTRA_CLEAN	= results output_iso tmp_check regression.diffs regression.out log

PG_CONFIG	?= pg_config
# no LLVM bitcode: JIT does not inline extension code we ship anyway
override with_llvm = no
PGXS		:= $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SOURCES) $(EXTENSION).control
	cat $(SQL_SOURCES) > $@

# Targets that run only some kinds of tests against a running server.
.PHONY: installcheck-regress installcheck-isolation installcheck-tap pgindent
installcheck-regress:
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
installcheck-tap:
	$(prove_installcheck)

pgindent:
	pgindent --typedefs=typedefs.list src/*.c src/*.h
