# Differential test of the flowdb foreign data wrapper: the same random data
# in a heap table and in a foreign table, the same random queries against
# both, every result compared exactly (row order too where the query fixes
# it).  Queries cover every pushdown shape (key =, IN, = ANY, LIKE prefixes
# with % _ and escapes, starts_with, ^@, key ranges, ts ranges with extreme
# values, ORDER BY key/ts both ways, LIMIT/OFFSET, newest point per key,
# parameterized joins, count(*) pushed into the scan, alone, with counts of
# key / ts and per outer row) plus local filters, and run three ways: literal SQL,
# prepared statements under generic plans, and inside a transaction whose
# own writes (inserts, updates, deletes, range deletes) must be merged.
use strict;
use warnings;
use utf8;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $QUERIES = 750;    # per mode; 3 modes
srand(20240505);

my $node = PostgreSQL::Test::Cluster->new('fdw_diff');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'flowdb'\nflowdb.memtable_size_mb = 17\n"
	  . "flowdb.block_cache_mb = 8\nflowdb.index_memory_mb = 4\n");
$node->start;
$node->safe_psql('postgres',
	"CREATE DATABASE d ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");

# ------------------------------------------------------------------ data
my @alphabet = ('a', 'b', 'c', '%', '_', '\\', 'é', '✓', '.', '0', '1', 'Z', ' ');
sub rand_key
{
	my $len = 1 + int(rand(4));
	return join('', map { $alphabet[ int(rand(@alphabet)) ] } 1 .. $len);
}
my @special_ts = ('-9223372036854775808', '9223372036854775807', '0', '-1', '1');
sub rand_ts
{
	return $special_ts[ int(rand(@special_ts)) ] if rand() < 0.15;
	return int(rand(2001)) - 1000;
}
sub sqlq { my $s = shift; $s =~ s/'/''/g; return "'$s'"; }
sub rand_text
{
	my $r = rand();
	return 'NULL' if $r < 0.2;
	return "''" if $r < 0.3;
	return sqlq(join('', map { $alphabet[ int(rand(@alphabet)) ] } 1 .. int(rand(6))));
}

my %rows;    # "key\0ts" -> values sql
my @keys;
my %seen_key;
for (1 .. 250)
{
	my $k = rand_key();
	next if $seen_key{$k}++;
	push @keys, $k;
	for (1 .. 1 + int(rand(8)))
	{
		my $ts = rand_ts();
		my $v  = rand() < 0.2 ? 'NULL' : int(rand(100));
		my $j  = rand() < 0.3 ? 'NULL' : sqlq('{"n": ' . int(rand(10)) . ', "s": ' . '"x"}');
		$rows{"$k\0$ts"} = join(', ', sqlq($k), $ts, $v, rand_text(), $j);
	}
}
my $values = join(",\n", map { "($rows{$_})" } sort keys %rows);
my $setup = <<"SQL";
CREATE EXTENSION flowdb;
CREATE TABLE h (key text COLLATE "C", ts bigint, v int, s text, j jsonb);
CREATE FOREIGN TABLE f (key text COLLATE "C", ts bigint, v int, s text, j jsonb) SERVER flowdb;
CREATE TABLE wanted (k text COLLATE "C");
INSERT INTO h VALUES $values;
INSERT INTO f SELECT * FROM h;
SQL
$setup .= "INSERT INTO wanted VALUES " . join(', ', map { '(' . sqlq($keys[ int(rand(@keys)) ]) . ')' } 1 .. 5) . ";\n";
$setup .= "ANALYZE h; ANALYZE f; ANALYZE wanted;\n";
$node->safe_psql('d', $setup);
# half of the data in SSTs, half in the memtable
$node->safe_psql('d', 'SELECT flowdb.flush()');
$node->safe_psql('d', "UPDATE f SET v = v + 1 WHERE ts % 3 = 0; UPDATE h SET v = v + 1 WHERE ts % 3 = 0;");
is($node->safe_psql('d', 'SELECT count(*) FROM f'), scalar(keys %rows), 'foreign table holds every row');

# ---------------------------------------------------------------- queries
sub like_escape
{
	my $s = shift;
	$s =~ s/([\\%_])/\\$1/g;
	return $s;
}
sub some_key { return $keys[ int(rand(@keys)) ]; }
sub key_prefix { my $k = some_key(); return substr($k, 0, 1 + int(rand(length($k)))); }

# Each condition: [sql with $n placeholders, [param values], [param types]]
sub key_cond
{
	my $r = int(rand(12));
	return ['key = $', [some_key()], ['text']] if $r == 0;
	return ['key IN ($, $, $)', [ some_key(), some_key(), rand_key() ], [ 'text', 'text', 'text' ]] if $r == 1;
	return ['key = ANY($)', ['{' . join(',', map { my $k = $_; $k =~ s/(["\\])/\\$1/g; "\"$k\"" } (some_key(), some_key(), rand_key())) . '}'], ['text[]']] if $r == 2;
	return ['key LIKE $', [ like_escape(key_prefix()) . '%' ], ['text']] if $r == 3;
	return ['key LIKE $', [ like_escape(key_prefix()) . '_%' ], ['text']] if $r == 4;
	return ['key LIKE $', [ key_prefix() . '%' ], ['text']] if $r == 5;    # unescaped: % _ act as wildcards
	return ['starts_with(key, $)', [key_prefix()], ['text']] if $r == 6;
	return ['key ^@ $', [key_prefix()], ['text']] if $r == 7;
	my @ops = ('<', '<=', '>', '>=');
	return ['key ' . $ops[ int(rand(4)) ] . ' $', [ rand() < 0.5 ? some_key() : rand_key() ], ['text']] if $r <= 9;
	return ['key BETWEEN $ AND $', [ sort(rand_key(), rand_key()) ], [ 'text', 'text' ]] if $r == 10;
	return ['key LIKE $', [ like_escape(some_key()) ], ['text']];    # no wildcard: equality
}
sub ts_cond
{
	my $r = int(rand(7));
	my @ops = ('=', '<', '<=', '>', '>=');
	return ['ts BETWEEN $ AND $', [ sort { $a <=> $b } (rand_ts(), rand_ts()) ], [ 'bigint', 'bigint' ]] if $r == 5;
	return ['$ ' . $ops[ int(rand(5)) ] . ' ts', [ rand_ts() ], ['bigint']] if $r == 6;
	return ['ts ' . $ops[$r] . ' $', [ rand_ts() ], ['bigint']];
}
sub local_cond
{
	my $r = int(rand(4));
	return ['v > $', [ int(rand(100)) ], ['int']] if $r == 0;
	return ['s IS NULL', [], []] if $r == 1;
	return ["(j->>'n')::int < \$", [ int(rand(10)) ], ['int']] if $r == 2;
	return ["s = ''", [], []];
}

# A query: (sql template, params, types, ordered?)
sub make_query
{
	my @conds;
	push @conds, key_cond() if rand() < 0.75;
	push @conds, key_cond() if rand() < 0.15;
	push @conds, ts_cond()  if rand() < 0.5;
	push @conds, ts_cond()  if rand() < 0.2;
	push @conds, local_cond() if rand() < 0.2;
	my (@params, @types, @parts);
	for my $c (@conds)
	{
		my ($sql, $p, $t) = @$c;
		push @params, @$p;
		push @types,  @$t;
		push @parts, $sql;
	}
	my $where = @parts ? ' WHERE ' . join(' AND ', @parts) : '';
	my $shape = int(rand(13));
	my ($sql, $ordered);
	if ($shape == 0)
	{
		($sql, $ordered) = ("SELECT count(*), sum(v) FROM T$where", 1);
	}
	elsif ($shape == 10)
	{
		# pushed into the scan when every condition is
		($sql, $ordered) = ("SELECT count(*) FROM T$where", 1);
	}
	elsif ($shape == 11)
	{
		($sql, $ordered) = ("SELECT count(ts), count(*) + 1, count(key) FROM T$where", 1);
	}
	elsif ($shape == 12)
	{
		# a pushed count per outer row (the scan restarts per key)
		my $w = join(' AND ', map { my $x = $_; $x =~ s/\b(key|ts|v|s|j)\b/t.$1/g; $x } @parts);
		$w = $w ? " AND $w" : '';
		($sql, $ordered) = ("SELECT w.k, (SELECT count(*) FROM T t WHERE t.key = w.k$w) FROM wanted w", 0);
	}
	elsif ($shape == 1)
	{
		# newest point of one key
		push @params, some_key();
		push @types,  'text';
		my $w = $where ? "$where AND key = \$" : ' WHERE key = $';
		($sql, $ordered) = ("SELECT key, ts, v FROM T$w ORDER BY ts DESC LIMIT 1", 1);
	}
	elsif ($shape == 2)
	{
		# parameterized join from a small table of keys
		my $w = join(' AND ', map { my $x = $_; $x =~ s/\b(key|ts|v|s|j)\b/t.$1/g; $x } @parts);
		$w = $w ? " AND $w" : '';
		($sql, $ordered) = ("SELECT w.k, t.ts, t.v FROM wanted w JOIN T t ON t.key = w.k$w", 0);
	}
	elsif ($shape <= 5)
	{
		($sql, $ordered) = ("SELECT key, ts, v, s, j FROM T$where", 0);
	}
	else
	{
		my $dir = rand() < 0.5 ? '' : ' DESC';
		my $lim = '';
		if (rand() < 0.6)
		{
			$lim = ' LIMIT ' . int(rand(12));
			$lim .= ' OFFSET ' . int(rand(5)) if rand() < 0.4;
		}
		($sql, $ordered) = ("SELECT key, ts, v, s FROM T$where ORDER BY key$dir, ts$dir$lim", 1);
	}
	return [ $sql, \@params, \@types, $ordered ];
}

sub literal
{
	my ($v, $t) = @_;
	return sqlq($v) . "::$t";
}
sub literal_sql
{
	my ($qr, $table) = @_;
	my ($sql, $params, $types) = @$qr;
	my $i = 0;
	$sql =~ s/\bT\b/$table/;
	$sql =~ s/\$/literal($params->[$i], $types->[$i++])/ge;
	return $sql;
}
sub prepared_sql
{
	my ($qr, $table, $n) = @_;
	my ($sql, $params, $types) = @$qr;
	my $i = 0;
	$sql =~ s/\bT\b/$table/;
	$sql =~ s/\$/'$' . ++$i/ge;
	my $args = join(', ', map { literal($params->[$_], $types->[$_]) } 0 .. $#$params);
	my $decl = @$types ? '(' . join(', ', @$types) . ')' : '';
	my $exec = @$types ? "($args)" : '';
	return "PREPARE p$n$decl AS $sql;\nEXECUTE p$n$exec;\nDEALLOCATE p$n;";
}

# own writes for the transactional mode (the same on both tables)
my $writes = '';
my %own;
for (1 .. 40)
{
	my ($k, $ts);
	do { $k = rand() < 0.5 ? some_key() : rand_key(); $ts = rand_ts(); }
	  while ($rows{"$k\0$ts"} || $own{"$k\0$ts"}++);    # heap has no replace-on-insert
	$writes .= "INSERT INTO T VALUES (" . sqlq($k) . ", $ts, 7, 'own', NULL);\n";
}
$writes .= "DELETE FROM T WHERE key = " . sqlq(some_key()) . ";\n" for 1 .. 5;
$writes .= "DELETE FROM T WHERE key LIKE " . sqlq(like_escape(key_prefix()) . '%') . ";\n" for 1 .. 2;
$writes .= "DELETE FROM T WHERE key = " . sqlq(some_key()) . " AND ts > 0;\n" for 1 .. 5;
$writes .= "UPDATE T SET v = -1, s = 'upd' WHERE key = " . sqlq(some_key()) . " AND ts < 0;\n" for 1 .. 5;

my @queries = map { make_query() } 1 .. $QUERIES;

sub run_script
{
	my ($mode, $table) = @_;
	my $script = "SET client_min_messages = warning;\n";
	$script .= "SET plan_cache_mode = force_generic_plan;\n" if $mode eq 'generic';
	if ($mode eq 'xact')
	{
		(my $w = $writes) =~ s/\bT\b/$table/g;
		$script .= "BEGIN;\n$w";
	}
	for my $n (0 .. $#queries)
	{
		$script .= "\\echo ==== $n\n";
		$script .= ($mode eq 'generic' ? prepared_sql($queries[$n], $table, $n) : literal_sql($queries[$n], $table) . ';') . "\n";
	}
	$script .= "ROLLBACK;\n" if $mode eq 'xact';
	my ($stdout, $stderr);
	$node->psql('d', $script, stdout => \$stdout, stderr => \$stderr, extra_params => [ '-A', '-t', '-q' ],
		on_error_stop => 0);
	my %out;
	my $cur;
	for my $line (split /\n/, $stdout)
	{
		if ($line =~ /^==== (\d+)$/) { $cur = $1; $out{$cur} = []; next; }
		push @{ $out{$cur} }, $line if defined $cur;
	}
	return (\%out, $stderr);
}

my $compared = 0;
for my $mode ('literal', 'generic', 'xact')
{
	my ($heap, $herr) = run_script($mode eq 'generic' ? 'literal' : $mode, 'h');
	my ($fdw,  $ferr) = run_script($mode, 'f');
	my @bad;
	my $nonempty = 0;
	my $errors = () = ($ferr // '') =~ /ERROR/g;
	for my $n (0 .. $#queries)
	{
		my @a = @{ $heap->{$n} // ['<missing>'] };
		$nonempty++ if @a && $a[0] ne '' && $a[0] !~ /^0(\||$)/;    # a count of 0 is empty too
		my @b = @{ $fdw->{$n}  // ['<missing>'] };
		unless ($queries[$n][3])
		{
			@a = sort @a;
			@b = sort @b;
		}
		$compared++;
		next if join("\n", @a) eq join("\n", @b);
		push @bad, "query $n: " . literal_sql($queries[$n], 'f') . "\n  heap: " . join(' | ', @a) . "\n  fdw:  " . join(' | ', @b);
	}
	ok(@bad == 0, "$mode: $QUERIES queries give the same results on heap and foreign table")
	  or diag(join("\n", @bad[ 0 .. ($#bad < 9 ? $#bad : 9) ]));
	is($ferr, $herr, "$mode: same errors") if $mode ne 'generic';
	# the test means something only if most queries return rows and run
	cmp_ok($nonempty, '>=', $QUERIES * 0.4, "$mode: $nonempty queries returned rows");
	cmp_ok($errors, '<=', $QUERIES * 0.05, "$mode: $errors queries failed (malformed LIKE patterns)");
}
cmp_ok($compared, '>=', 2000, "compared $compared queries");

# the pushdowns really happened: EXPLAIN of a few shapes names engine bounds
my $plan = $node->safe_psql('d', "EXPLAIN SELECT * FROM f WHERE key LIKE 'a%' AND ts > 5 ORDER BY key DESC, ts DESC LIMIT 3");
like($plan, qr/Key Bounds: key LIKE prefix of 'a%'.*Ts Bounds: ts > 5.*Engine Order: key DESC, ts DESC.*Engine Limit/s,
	'prefix, ts, order and limit are pushed');
$plan = $node->safe_psql('d', "EXPLAIN SELECT count(*) FROM f WHERE key LIKE 'a_%' AND ts > 5");
like($plan, qr/^Foreign Scan.*Key Recheck: key LIKE 'a_%'.*Aggregate Pushed Down: count\(\*\)/s,
	'count(*) is pushed');
$node->stop;
done_testing();
