package Sessiond;

# sessiond's session for a Perl page: read it, change it. Perl 5.14 or
# later, core modules only (JSON::PP for JSON items).

use strict;
use warnings;

our $VERSION = '1.0';

# JSON::PP and Carp are loaded when first needed: loading them costs a page
# ten times what starting perl does, and a page that reads strings and
# integers needs neither.
my $JSON;
sub _json {
    require JSON::PP;
    return $JSON ||= JSON::PP->new->utf8->canonical->allow_nonref;
}
sub _croak { require Carp; goto &Carp::croak }

# JSON integers Perl holds exactly (the counters' values).
my $INTEGER = qr/\A-?(?:0|[1-9][0-9]{0,14})\z/;

# Every byte that is not RFC 3986 unreserved becomes %XX, as sessiond does.
# A character string is taken as its UTF-8 bytes.
sub encode {
    my ($text) = @_;
    _croak('Sessiond::encode: undefined') unless defined $text;
    utf8::encode($text) if utf8::is_utf8($text);
    $text =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $text;
}

# %XX escapes and '+' (a space) -> bytes; a '%' that starts no escape stays.
sub decode {
    my ($text) = @_;
    $text =~ tr/+/ /;
    $text =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $text;
}

sub new {
    my ($class, %opt) = @_;
    my $env = $opt{env} || \%ENV;
    my ($text, $types) = ($env->{HTTP_SESSION}, $env->{SESSION_TYPES});
    if (!defined $text && defined $env->{SESSION_FILE} && length $env->{SESSION_FILE}) {
        open my $fh, '<:raw', $env->{SESSION_FILE}
            or _croak("Sessiond: cannot read $env->{SESSION_FILE}: $!");
        local $/;
        my @lines = split /\n/, scalar(<$fh> // ''), -1;
        close $fh;
        $text = $lines[0];
        $types = $lines[1] unless defined $types;
    }
    my (%items, %json);
    for my $pair (split /&/, $text // '') {
        next unless length $pair;
        my ($k, $v) = split /=/, $pair, 2;
        $items{decode($k)} = decode($v // '');
    }
    $json{decode($_)} = 1 for grep { length } split /&/, $types // '';
    for my $name (CORE::keys %$env) {
        $json{$1} = 1 if $name =~ /^SESSION_TYPE_(.+)\z/s && $env->{$name} eq 'json';
    }
    return bless {
        items   => \%items,
        json    => \%json,
        lines   => [],
        id      => $env->{SESSION_ID} // '',
        new     => ($env->{SESSION_NEW} // '') eq '1',
        mode    => $env->{SESSION_MODE} // '',
        status  => $env->{SESSION_STATUS} // '',  # '' on an off location
    }, $class;
}

# --- What sessiond said.
sub id     { $_[0]{id} }
sub is_new { $_[0]{new} }
sub mode   { $_[0]{mode} }
sub status { $_[0]{status} }

# Whether a change may be sent: a write or exclusive location (or no
# SESSION_MODE: not under sessiond) with the store available.
sub writable {
    my ($self) = @_;
    return $self->{mode} =~ /\A(?:write|exclusive|)\z/ && $self->{status} ne 'unavailable';
}

# --- Reading.
sub has  { exists $_[0]{items}{ _bytes($_[1]) } }
sub keys { sort { $a cmp $b } CORE::keys %{ $_[0]{items} } }

# 'string', 'json', or undef when there is no such item.
sub type {
    my ($self, $key) = @_;
    $key = _bytes($key);
    return undef unless exists $self->{items}{$key};
    return $self->{json}{$key} ? 'json' : 'string';
}

# The item as stored: a string's bytes, a JSON item's JSON text.
sub text {
    my ($self, $key, $default) = @_;
    $key = _bytes($key);
    return exists $self->{items}{$key} ? $self->{items}{$key} : $default;
}

# A string item's bytes, a JSON item's value (a number, an array or hash
# reference, JSON::PP's true or false, undef for null).
sub get {
    my ($self, $key, $default) = @_;
    $key = _bytes($key);
    return $default unless exists $self->{items}{$key};
    my $text = $self->{items}{$key};
    return $text unless $self->{json}{$key};
    return 0 + $text if $text =~ $INTEGER;
    return _deep(_json()->decode($text), \&_bytes);
}

# --- Changing (each returns the object, so calls chain).

# A plain scalar is stored as a string; a reference (array, hash, JSON::PP's
# booleans) or undef as JSON.
sub set {
    my ($self, $key, $value) = @_;
    return $self->set_json($key, $value) if !defined $value || ref $value;
    ($key, $value) = (_bytes($key), _bytes($value));
    $self->_directive('X-Session-Set', encode($key) . '=' . encode($value));
    $self->{items}{$key} = $value;
    delete $self->{json}{$key};
    return $self;
}

# Stores any value as JSON: set_json(visits => 3) stores the number 3, a
# string becomes a JSON string.
sub set_json {
    my ($self, $key, $value) = @_;
    $key = _bytes($key);
    my $text = _integer($value) // _json()->encode(_deep($value, \&_chars));
    $self->_directive('X-Session-Set-Json', encode($key) . '=' . encode($text));
    $self->{items}{$key} = $text;
    $self->{json}{$key} = 1;
    return $self;
}

sub remove {
    my ($self, $key) = @_;
    $key = _bytes($key);
    $self->_directive('X-Session-Remove', encode($key));
    delete $self->{items}{$key};
    delete $self->{json}{$key};
    return $self;
}

# Removes every item; the session and its id stay.
sub clear {
    my ($self) = @_;
    $self->_directive('X-Session-Clear', '1');
    %{ $self->{items} } = ();
    %{ $self->{json} } = ();
    return $self;
}

# Moves the session to a new id (do it at login).
sub regenerate { $_[0]->_directive('X-Session-Regenerate', '1') }

# Deletes the session and expires the cookie (a logout).
sub abandon {
    my ($self) = @_;
    $self->_directive('X-Session-Abandon', '1');
    %{ $self->{items} } = ();
    %{ $self->{json} } = ();
    return $self;
}

# The changes asked for so far, as header lines (each ending in CRLF), in
# order: print them among the page's headers.
sub headers { join '', @{ $_[0]{lines} } }

sub _directive {
    my ($self, $name, $value) = @_;
    push @{ $self->{lines} }, "$name: $value\r\n";
    return $self;
}

# A plain scalar Perl holds as an integer (not as a string), as JSON text,
# as JSON::PP would write it; else undef.
sub _integer {
    my ($v) = @_;
    return undef if !defined $v || ref $v;
    require B;
    my $flags = B::svref_2object(\$v)->FLAGS;
    return undef unless $flags & B::SVp_IOK() and !($flags & B::SVp_POK());
    my $text = "$v";
    return $text =~ $INTEGER ? $text : undef;
}

# The text inside a JSON value follows the rule of every value: JSON::PP
# (utf8) reads and writes characters, so each string and hash key of what
# it read is made bytes (_bytes), and each of what it is to write is made
# characters (_chars); numbers, booleans and undef pass as they are.
sub _deep {
    my ($v, $text) = @_;
    return [map { _deep($_, $text) } @$v] if ref $v eq 'ARRAY';
    return { map { ($text->($_) => _deep($v->{$_}, $text)) } CORE::keys %$v } if ref $v eq 'HASH';
    return $v if !defined $v || ref $v;
    require B;
    my $flags = B::svref_2object(\$v)->FLAGS;
    return $v if !($flags & B::SVp_POK());  # a number: JSON::PP writes it as one
    return $text->($v);
}

# A string of bytes that is UTF-8 text as its characters, as JSON::PP
# writes them; a character string as it is. Bytes that are not UTF-8 (no
# JSON text holds them) stay characters of their own code, as JSON::PP took
# every string before ("caf\xe9", Latin-1, is "café").
sub _chars {
    my ($s) = @_;
    return $s if utf8::is_utf8($s) || $s !~ /[\x80-\xff]/;
    my $c = $s;
    return utf8::decode($c) ? $c : $s;
}

# Keys and values are bytes; a character string is taken as its UTF-8.
sub _bytes {
    my ($s) = @_;
    _croak('Sessiond: a key or value is undefined') unless defined $s;
    utf8::encode($s) if utf8::is_utf8($s);
    return $s;
}

1;

__END__

=head1 NAME

Sessiond - sessiond's session for a Perl page

=head1 SYNOPSIS

    use lib '/usr/share/sessiond/perl';
    use Sessiond;

    my $session = Sessiond->new;
    my $visits = ($session->get('visits') // 0) + 1;
    $session->set(visits => $visits);
    print "Content-Type: text/plain\r\n", $session->headers, "\r\n";
    print "Visit number $visits\n";

=head1 DESCRIPTION

Reads the session sessiond gave the page (C<HTTP_SESSION>, or the file
C<SESSION_FILE> names when the session is 128 KiB or more; the types from
C<SESSION_TYPES>), and writes the directives that change it
(C<X-Session-Set>, C<X-Session-Set-Json>, C<X-Session-Remove>,
C<X-Session-Clear>, C<X-Session-Regenerate>, C<X-Session-Abandon>), every
key and value percent-encoded. Keys and values are bytes. A change also shows
in what the object reads back. See docs/pages.md.

=cut
