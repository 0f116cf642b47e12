# Crash recovery: committed FlowDB writes survive SIGKILL of the postmaster,
# rolled-back and uncommitted ones never appear, transactions stay atomic.
#
# Several clients write concurrently (commits, rollbacks, savepoint rollbacks,
# transactions larger than half a memtable, sorted ones streamed to their
# table while they run; one client runs
# flush/compact/checkpoint), each logging the outcome the
# server acknowledged.  The postmaster is killed with SIGKILL mid-load, the
# cluster restarted, and every row checked against the client logs.  Several
# rounds; then a clean restart; the server log must show no other crash.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX ();

my $rounds = $ENV{FLOWDB_CRASH_ROUNDS} // 3;
my $clients = 4;
my $big_rows = 100000;    # ~12 MB of memtable footprint; memtables are 17 MB

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'flowdb'
flowdb.wal_sync_mode = always
flowdb.memtable_size_mb = 17
flowdb.block_cache_mb = 8
flowdb.index_memory_mb = 4
fsync = on
log_statement = none
max_connections = 30
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION flowdb');
# one row per transaction of shape 5, which also writes to the heap
$node->safe_psql('postgres', 'CREATE TABLE crash_heap (txn text PRIMARY KEY)');

my $logdir = $PostgreSQL::Test::Utils::tmp_check;
my (%committed, %rolled_back, @unknown_groups);

sub psql_ok
{
	my ($sql) = @_;
	my $rc = system('psql', '-X', '-q', '-h', $node->host, '-p', $node->port,
		'-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', $sql);
	return $rc == 0;
}

sub put_sql
{
	my ($key) = @_;
	return "SELECT flowdb.put('$key', 1, convert_to('$key', 'UTF8'));";
}

# One writer: loops until the server goes away, logging each outcome as
#   C <keys>  committed (acknowledged)     R <keys>  rolled back
#   U <keys>  commit attempted, outcome unknown (server died): all or none
sub writer
{
	my ($client, $round) = @_;
	open my $log, '>', "$logdir/client-$round-$client.log" or die $!;
	$log->autoflush(1);
	open STDOUT, '>', '/dev/null';
	open STDERR, '>', '/dev/null';
	for (my $n = 0;; $n++)
	{
		my @k = map { "c$client-r$round-t$n-$_" } 1 .. 3;
		my $shape = $n % 6;
		my ($sql, $commit, $rollback);
		if ($client == 1 && $shape == 1)
		{
			# larger than half a memtable: the batch is written as a table
			# of its own at commit (an INGEST record instead of a batch)
			my $p = "c$client-r$round-t$n-big";
			$sql = "BEGIN;SELECT flowdb.put_many(array_agg(k), array_agg(1::bigint),"
			  . " array_agg(convert_to(k, 'UTF8')))"
			  . " FROM (SELECT '$p' || i AS k FROM generate_series(1, $big_rows) i) s;COMMIT;";
			($commit, $rollback) = ([ map { "$p$_" } 1 .. $big_rows ], []);
		}
		elsif ($client == 2 && $shape == 1)
		{
			# the same, in key order: a table stream writes the table while
			# the statement runs, and the commit only finishes it
			my $p = "c$client-r$round-t$n-sorted";
			$sql = "BEGIN;SELECT flowdb.put_many(array_agg(k ORDER BY k),"
			  . " array_agg(1::bigint), array_agg(convert_to(k, 'UTF8') ORDER BY k))"
			  . " FROM (SELECT '$p' || lpad(i::text, 6, '0') AS k"
			  . " FROM generate_series(1, $big_rows) i) s;COMMIT;";
			($commit, $rollback) =
			  ([ map { $p . sprintf('%06d', $_) } 1 .. $big_rows ], []);
		}
		elsif ($shape == 0 || $shape == 1)
		{
			$sql = 'BEGIN;' . put_sql($k[0])
			  . "SELECT flowdb.put_many(ARRAY['$k[1]', '$k[2]'], ARRAY[1, 1]::bigint[],"
			  . " ARRAY[convert_to('$k[1]', 'UTF8'), convert_to('$k[2]', 'UTF8')]);COMMIT;";
			($commit, $rollback) = ([@k], []);
		}
		elsif ($shape == 2)
		{
			$sql = 'BEGIN;' . join('', map { put_sql($_) } @k) . 'ROLLBACK;';
			($commit, $rollback) = ([], [@k]);
		}
		elsif ($shape == 3)
		{
			$sql = 'BEGIN;' . put_sql($k[0]) . 'SAVEPOINT s;' . put_sql($k[1])
			  . 'ROLLBACK TO SAVEPOINT s;' . put_sql($k[2]) . 'COMMIT;';
			($commit, $rollback) = ([ $k[0], $k[2] ], [ $k[1] ]);
		}
		elsif ($shape == 5)
		{
			# a heap row in the same transaction assigns a Postgres xid:
			# the tagged path, where recovery asks clog whether the batch
			# committed (the other shapes are xid-less)
			$sql = 'BEGIN;' . put_sql($k[0])
			  . "INSERT INTO crash_heap VALUES ('c$client-r$round-t$n');"
			  . put_sql($k[1]) . put_sql($k[2]) . 'COMMIT;';
			($commit, $rollback) = ([@k], []);
		}
		else
		{
			# an error aborts the transaction: nothing of it may appear
			$sql = 'BEGIN;' . put_sql($k[0]) . put_sql($k[1])
			  . "SELECT 1/0;" . put_sql($k[2]) . 'COMMIT;';
			($commit, $rollback) = ([], [@k]);
			psql_ok($sql);
			print $log "R @$rollback\n";
			next;
		}
		if (psql_ok($sql))
		{
			print $log "C @$commit\n" if @$commit;
			print $log "R @$rollback\n" if @$rollback;
		}
		else
		{
			print $log "U @$commit\n" if @$commit;
			print $log "R @$rollback\n" if @$rollback;
			# stop once the server is gone
			last unless psql_ok('SELECT 1');
		}
	}
	close $log;
	POSIX::_exit(0);
}

sub maintainer
{
	open STDOUT, '>', '/dev/null';
	open STDERR, '>', '/dev/null';
	for (my $i = 0;; $i++)
	{
		my $op = ('flowdb.flush()', 'flowdb.compact(false)', 'flowdb.checkpoint()',
			'flowdb.compact()')[ $i % 4 ];
		last unless psql_ok("SELECT $op");
		sleep(0.2);
	}
	POSIX::_exit(0);
}

sub children_of
{
	my ($ppid) = @_;
	my @kids;
	for my $stat (glob('/proc/[0-9]*/stat'))
	{
		open my $fh, '<', $stat or next;
		my $line = <$fh>;
		close $fh;
		next unless defined $line && $line =~ /^(\d+) \(.*\) \S (\d+)/;
		push @kids, $1 if $2 == $ppid;
	}
	return @kids;
}

sub read_logs
{
	(%committed, %rolled_back, @unknown_groups) = ();
	for my $f (glob("$logdir/client-*.log"))
	{
		open my $fh, '<', $f or die $!;
		while (my $line = <$fh>)
		{
			chomp $line;
			my ($tag, @keys) = split / /, $line;
			if ($tag eq 'C') { $committed{$_} = 1 for @keys; }
			elsif ($tag eq 'R') { $rolled_back{$_} = 1 for @keys; }
			elsif ($tag eq 'U') { push @unknown_groups, [@keys]; }
		}
	}
}

sub verify
{
	my ($label) = @_;
	read_logs();
	my $out = $node->safe_psql('postgres',
		"SELECT key || '=' || convert_from(value, 'UTF8') FROM flowdb.scan()");
	my %present;
	for my $row (split /\n/, $out)
	{
		my ($k, $v) = split /=/, $row, 2;
		$present{$k} = $v;
	}
	my @missing = grep { !exists $present{$_} } sort keys %committed;
	my @wrong = grep { exists $present{$_} && $present{$_} ne $_ } sort keys %present;
	my @resurrected = grep { exists $present{$_} } sort keys %rolled_back;
	my @partial = grep {
		my $n = grep { exists $present{$_} } @$_;
		$n != 0 && $n != scalar(@$_)
	} @unknown_groups;
	my %known = (%committed, %rolled_back, map { map { $_ => 1 } @$_ } @unknown_groups);
	my @phantom = grep { !$known{$_} } sort keys %present;
	# shape 5: its heap row and its FlowDB keys committed together or not
	my %heap = map { $_ => 1 }
	  split /\n/, $node->safe_psql('postgres', 'SELECT txn FROM crash_heap');
	my %shape5 = map { /^(c\d+-r\d+-t(\d+))-\d$/ && $2 % 6 == 5 ? ($1 => 1) : () }
	  keys %committed, keys %present, map { @$_ } @unknown_groups;
	my @disagree = grep {
		my $t = $_;
		my $n = grep { exists $present{"$t-$_"} } 1 .. 3;
		$heap{$t} ? $n != 3 : $n != 0
	} sort keys %shape5;

	ok(scalar(keys %committed) > 0, "$label: clients committed something");
	is(scalar(@missing), 0, "$label: all " . scalar(keys %committed) . " committed keys present")
	  or diag("missing: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");
	is(scalar(@wrong), 0, "$label: values intact") or diag("wrong: @wrong");
	is(scalar(@resurrected), 0,
		"$label: none of " . scalar(keys %rolled_back) . " rolled-back keys present")
	  or diag("rolled back but present: @resurrected");
	is(scalar(@partial), 0,
		"$label: " . scalar(@unknown_groups) . " in-flight transactions all-or-nothing")
	  or diag('partial: ' . join(' | ', map { "@$_" } @partial));
	is(scalar(@phantom), 0, "$label: no unexpected keys") or diag("phantom: @phantom");
	ok(scalar(keys %heap) > 0, "$label: transactions with a heap write committed");
	is(scalar(@disagree), 0,
		"$label: heap rows and FlowDB writes of " . scalar(keys %shape5)
		  . " mixed transactions agree")
	  or diag("disagree: @disagree[0 .. ($#disagree < 9 ? $#disagree : 9)]");
}

my $streamed = 0;    # streamed commits seen before the kills
for my $round (1 .. $rounds)
{
	my @pids;
	for my $c (1 .. $clients)
	{
		my $pid = fork() // die "fork: $!";
		if ($pid == 0) { writer($c, $round); }
		push @pids, $pid;
	}
	my $mpid = fork() // die "fork: $!";
	maintainer() if $mpid == 0;
	push @pids, $mpid;

	sleep(2 + rand(2));
	my ($rc, $n) = $node->psql('postgres',
		"SELECT value FROM flowdb.stats() WHERE name = 'ingests_streamed'");
	$streamed += $n if $rc == 0 && $n =~ /^\d+$/;
	my $postmaster = $node->{_pid};
	my @server_procs = children_of($postmaster);
	$node->kill9;

	# Orphaned backends exit when they notice the postmaster is gone; the
	# new postmaster cannot start before they have.  Stragglers get SIGKILL.
	my $deadline = time() + 30;
	while (grep { kill(0, $_) } @server_procs)
	{
		if (time() > $deadline)
		{
			kill 9, grep { kill(0, $_) } @server_procs;
			sleep(0.5);
			last;
		}
		sleep(0.1);
	}
	waitpid($_, 0) for @pids;

	$node->start;
	$node->poll_query_until('postgres', 'SELECT count(*) >= 0 FROM flowdb.scan(lim => 1)')
	  or die 'engine did not come back';
	verify("round $round (after SIGKILL)");
}

ok($streamed > 0, "$streamed sorted large transactions were streamed to their tables");

$node->restart;
verify('after a clean restart');

# Nothing crashed except the postmaster we killed.
my $log = slurp_file($node->logfile);
unlike($log, qr/TRAP:|terminated by signal|server process .* was terminated|PANIC/,
	'server log shows no other crash');
like($log, qr/flowdb: engine ready/, 'engine came up');
like($log, qr/flowdb: engine closed/, 'clean shutdown closed the engine');

$node->stop;
done_testing();
