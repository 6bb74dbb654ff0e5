# Unit tests of helpers/perl/Sessiond.pm (ctest helpers.perl): prove tests/helpers/sessiond.t
use strict;
use warnings;
use FindBin;
use File::Temp ();
use JSON::PP ();
use Test::More;

use lib "$FindBin::Bin/../../helpers/perl";
use Sessiond;

# Keys and values that break a naive encoder or parser: every one must round-trip.
my @awkward = ('&', '=', '%', '+', 'a b', "line\nbreak\n", "\r", "caf\xc3\xa9 \xe2\x82\xac", '', '%41',
               'x=y&z=w', "\xff\x80", '~-._', "\t", q{"'\\$`}, join('', map { chr } 1 .. 255));

# What sessiond does with an X-Session-Set line: split at the first '=',
# percent-decode both halves ('+' a space).
sub parse_directive {
    my ($line) = @_;
    $line =~ s/\r\n\z//;
    my ($name, $value) = split /: /, $line, 2;
    my ($k, $v) = split /=/, $value, 2;
    return ($name, Sessiond::decode($k), Sessiond::decode($v // ''));
}

sub environ_with {
    my ($items, $types, %extra) = @_;
    my %env = (HTTP_SESSION => join('&', map { Sessiond::encode($_->[0]) . '=' . Sessiond::encode($_->[1]) } @$items),
               SESSION_ID => 'abc', SESSION_NEW => '0', SESSION_MODE => 'write', %extra);
    $env{SESSION_TYPES} = join '&', map { Sessiond::encode($_) } @$types if $types && @$types;
    return \%env;
}

subtest 'coding' => sub {
    is(Sessiond::encode('AZaz09-._~'), 'AZaz09-._~', 'unreserved stays');
    is(Sessiond::encode("& =%+\n"), '%26%20%3D%25%2B%0A', 'the rest escaped');
    is(Sessiond::encode("\x{20ac}"), '%E2%82%AC', 'a character string as UTF-8');
    is(Sessiond::encode("\xe2\x82\xac"), '%E2%82%AC', 'bytes as bytes');
    is(Sessiond::encode(''), '', 'empty');
    is(Sessiond::decode('a+b%20c%2b%2B%e2%82%AC'), "a b c++\xe2\x82\xac", 'plus and escapes of either case');
    is(Sessiond::decode('100%'), '100%', 'a lone %');
    is(Sessiond::decode('%zz%4'), '%zz%4', 'no escape');
    is(Sessiond::decode(Sessiond::encode($_)), $_, 'round trip') for @awkward;
};

subtest 'reading' => sub {
    my @items = map { [$awkward[$_] . 'k', $awkward[-1 - $_]] } 0 .. $#awkward;
    my $s = Sessiond->new(env => environ_with(\@items));
    for (@items) {
        is($s->get($_->[0]), $_->[1], 'value of an awkward key');
        is($s->type($_->[0]), 'string', 'a string');
    }
    is(scalar(my @k = $s->keys), scalar @items, 'every key');

    $s = Sessiond->new(env => { HTTP_SESSION => 'user=ann+lee&&x=%7e&empty=' });
    is_deeply([map { $s->get($_) } qw(user x empty)], ['ann lee', '~', ''], "mod_session's text");
    is_deeply([$s->keys], [qw(empty user x)], 'keys in order');
    ok(!$s->has('none') && !defined $s->get('none') && $s->get('none', 0) == 0, 'absent');
};

subtest 'typed values' => sub {
    my $s = Sessiond->new(env => environ_with(
        [[visits => '3'], [cart => '{"apple":1}'], [name => '3'], ['a b' => '[1,2]'], [flag => 'true']],
        [qw(visits cart), 'a b', 'flag']));
    is($s->get('visits'), 3, 'a JSON number');
    is_deeply($s->get('cart'), { apple => 1 }, 'a JSON object');
    is_deeply($s->get('a b'), [1, 2], 'a JSON array under a key that is no name');
    ok($s->get('flag'), 'a JSON true');
    is($s->text('cart'), '{"apple":1}', 'the JSON text');
    is($s->get('name'), '3', 'a string');
    is_deeply([map { $s->type($_) } qw(cart name none)], ['json', 'string', undef], 'types');
    is(Sessiond->new(env => { HTTP_SESSION => 'n=3', SESSION_TYPE_n => 'json' })->type('n'), 'json',
       'SESSION_TYPE_ counts too');
};

subtest 'a session over 128 KiB, from SESSION_FILE' => sub {
    my $big = "\xe2\x82\xac" x 50000;
    my $text = 'big=' . Sessiond::encode($big) . '&n=4&s=x%26y';
    my $f = File::Temp->new;
    print $f "$text\nn";
    close $f;
    my $s = Sessiond->new(env => { SESSION_FILE => $f->filename, SESSION_NEW => '0' });
    is($s->get('big'), $big, 'the large value');
    is_deeply([$s->get('n'), $s->get('s')], [4, 'x&y'], 'the others, with their types');
    open my $g, '>', $f->filename or die;
    print $g $text;
    close $g;
    $s = Sessiond->new(env => { SESSION_FILE => $f->filename });
    is($s->type('n'), 'string', 'without a types line');
};

subtest 'status and mode' => sub {
    my $s = Sessiond->new(env => { SESSION_STATUS => 'expired', SESSION_NEW => '1', SESSION_MODE => 'read', SESSION_ID => '' });
    is_deeply([$s->status, $s->mode, $s->is_new, $s->id], ['expired', 'read', 1, ''], 'as sessiond said');
    ok(!$s->writable, 'read: not writable');
    is(Sessiond->new(env => { SESSION_MODE => 'off' })->status, '', 'none on an off location');
    ok(Sessiond->new(env => { SESSION_MODE => 'exclusive' })->writable, 'exclusive: writable');
    ok(!Sessiond->new(env => { SESSION_MODE => 'write', SESSION_STATUS => 'unavailable' })->writable, 'store unavailable');
    ok(!Sessiond->new(env => { SESSION_MODE => 'off' })->writable, 'off');
};

subtest 'changing' => sub {
    my $s = Sessiond->new(env => {});
    $s->set($_ => "$_=v&") for grep { length } @awkward;
    my @lines = split /(?<=\r\n)/, $s->headers;
    is(scalar @lines, scalar(grep { length } @awkward), 'a line each');
    for (@lines) {
        like($_, qr/\AX-Session-Set: [A-Za-z0-9%._~-]+=[A-Za-z0-9%._~-]*\r\n\z/, 'only unreserved bytes and escapes');
        my ($name, $k, $v) = parse_directive($_);
        is($v, "$k=v&", 'round trip');
    }

    $s = Sessiond->new(env => {});
    $s->set(s => '3')->set(l => { apple => 1, pear => [JSON::PP::true, undef] })->set_json(n => 3)->set_json(js => '3');
    is($s->headers,
       "X-Session-Set: s=3\r\n"
       . "X-Session-Set-Json: l=%7B%22apple%22%3A1%2C%22pear%22%3A%5Btrue%2Cnull%5D%7D\r\n"
       . "X-Session-Set-Json: n=3\r\n"
       . "X-Session-Set-Json: js=%223%22\r\n", 'strings, references and set_json');
    is_deeply([$s->get('s'), $s->get('n'), $s->get('js'), $s->type('n')], ['3', 3, '3', 'json'], 'read back');

    $s = Sessiond->new(env => environ_with([[a => 1], ['b c' => 2]]));
    $s->remove('b c');
    ok(!$s->has('b c'), 'removed');
    $s->clear;
    is(scalar(my @none = $s->keys), 0, 'cleared');
    $s->regenerate->abandon;
    is($s->headers, "X-Session-Remove: b%20c\r\nX-Session-Clear: 1\r\nX-Session-Regenerate: 1\r\nX-Session-Abandon: 1\r\n",
       'every directive');
    is(Sessiond->new(env => {})->headers, '', 'nothing asked, nothing sent');
};

subtest 'strings and integers need no JSON::PP' => sub {
    # A page that reads strings and integers and stores integers does not
    # pay for loading JSON::PP (a separate perl: this one has loaded it).
    my $lib = "$FindBin::Bin/../../helpers/perl";
    local $ENV{HTTP_SESSION} = 'visits=41&name=ann';
    local $ENV{SESSION_TYPES} = 'visits';
    my $out = qx{$^X -I'$lib' -MSessiond -e 'my \$s = Sessiond->new; my \$n = \$s->get(q(visits)) + 1; \$s->get(q(name)); \$s->set_json(visits => \$n); print \$s->headers, exists \$INC{q(JSON/PP.pm)} ? q(loaded) : q(not loaded)'};
    is($out, "X-Session-Set-Json: visits=42\r\nnot loaded", 'JSON::PP not loaded');
    my $s = Sessiond->new(env => { HTTP_SESSION => 'big=123456789012345678&neg=-7&f=1.5', SESSION_TYPES => 'big&neg&f' });
    is($s->get('neg'), -7, 'a negative integer');
    is($s->get('f'), 1.5, 'a number that is no integer, through JSON::PP');
    is($s->get('big'), '123456789012345678', 'an integer too large for a double, through JSON::PP');
    $s->set_json(a => 12)->set_json(b => '12')->set_json(c => 1.5);
    is($s->headers, "X-Session-Set-Json: a=12\r\nX-Session-Set-Json: b=%2212%22\r\nX-Session-Set-Json: c=1.5\r\n",
       'a number as a number, a string as a string');
};

subtest 'text inside JSON is bytes too, as every other value' => sub {
    # A name stored as a string (its UTF-8 bytes, as a form field arrives)
    # put inside a JSON value is that text, not its bytes taken as Latin-1
    # (which stored "cafÃ©"); text read from a JSON item is bytes, as a
    # string item's is, so it prints as it was stored.
    my $s = Sessiond->new(env => { SESSION_MODE => 'write',
        HTTP_SESSION => 'name=caf%C3%A9&cart=%7B%22caf%C3%A9%22%3A%5B%22%E2%82%AC%22%2C1%5D%7D',
        SESSION_TYPES => 'cart' });
    my $name = $s->get('name');
    is_deeply($s->get('cart'), { "caf\xc3\xa9" => ["\xe2\x82\xac", 1] }, 'read: keys and strings as UTF-8 bytes');
    $s->set_json(names => [$name])->set(cart => $s->get('cart'))->set_json(n => $name);
    my $chars = "caf\x{e9}";  # a character string: taken as its UTF-8, as set() does
    utf8::upgrade($chars);
    $s->set_json(c => { $chars => $chars });
    is($s->headers, "X-Session-Set-Json: names=%5B%22caf%C3%A9%22%5D\r\n"
       . "X-Session-Set-Json: cart=%7B%22caf%C3%A9%22%3A%5B%22%E2%82%AC%22%2C1%5D%7D\r\n"
       . "X-Session-Set-Json: n=%22caf%C3%A9%22\r\n"
       . "X-Session-Set-Json: c=%7B%22caf%C3%A9%22%3A%22caf%C3%A9%22%7D\r\n", 'written: the same text');
    my $t = Sessiond->new(env => { HTTP_SESSION => '' });
    $t->set_json(x => ["caf\xe9"]);  # not UTF-8: Latin-1 characters, as JSON::PP takes them
    is($t->headers, "X-Session-Set-Json: x=%5B%22caf%C3%A9%22%5D\r\n", 'bytes that are not UTF-8: as before');
};

done_testing;
