#include "store/session.h"

#include <algorithm>

namespace sessiond {

const char* TypeName(ItemType type) { return type == ItemType::Json ? "json" : "string"; }

void Apply(const std::vector<Change>& changes, Items& items, JsonKeys& json) {
  for (const Change& c : changes) {
    switch (c.kind) {
      case Change::Kind::Set:
        items[c.key] = c.value;
        if (c.type == ItemType::Json) json.insert(c.key);
        else json.erase(c.key);
        break;
      case Change::Kind::Remove:
        items.erase(c.key);
        json.erase(c.key);
        break;
      case Change::Kind::Clear:
        items.clear();
        json.clear();
        break;
      case Change::Kind::Replace:
        items = c.items;
        json.clear();
        for (const std::string& k : c.json)
          if (items.count(k)) json.insert(k);
        break;
    }
  }
}

const ChangeSet& KeepLoadedTypes(const ChangeSet& asked, const Session& loaded, ChangeSet& copy) {
  if (loaded.json.empty() ||
      std::none_of(asked.changes.begin(), asked.changes.end(),
                   [](const Change& c) { return c.kind == Change::Kind::Replace; }))
    return asked;
  copy = asked;
  for (Change& c : copy.changes) {
    if (c.kind != Change::Kind::Replace) continue;
    for (const auto& [k, v] : c.items) {
      auto was = loaded.items.find(k);
      if (was != loaded.items.end() && was->second == v && loaded.json.count(k)) c.json.insert(k);
    }
  }
  return copy;
}

namespace {

// A recursive-descent check of RFC 8259's grammar over `s` from `at`.
class JsonCheck {
 public:
  explicit JsonCheck(std::string_view s) : s_(s) {}

  bool Whole() {
    Space();
    if (!Value(0)) return false;
    Space();
    return at_ == s_.size();
  }

 private:
  static constexpr int kMaxDepth = 512;

  bool More() const { return at_ < s_.size(); }
  char Peek() const { return s_[at_]; }
  bool Eat(char c) {
    if (!More() || Peek() != c) return false;
    ++at_;
    return true;
  }
  void Space() {
    while (More() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\n' || Peek() == '\r')) ++at_;
  }
  bool Word(std::string_view w) {
    if (s_.substr(at_, w.size()) != w) return false;
    at_ += w.size();
    return true;
  }
  bool Digits() {
    std::size_t from = at_;
    while (More() && Peek() >= '0' && Peek() <= '9') ++at_;
    return at_ > from;
  }

  bool Value(int depth) {
    if (!More()) return false;
    switch (Peek()) {
      case '{': return Object(depth + 1);
      case '[': return Array(depth + 1);
      case '"': return String();
      case 't': return Word("true");
      case 'f': return Word("false");
      case 'n': return Word("null");
      default: return Number();
    }
  }

  bool Object(int depth) {
    if (depth > kMaxDepth) return false;
    ++at_;  // {
    Space();
    if (Eat('}')) return true;
    for (;;) {
      Space();
      if (!More() || Peek() != '"' || !String()) return false;
      Space();
      if (!Eat(':')) return false;
      Space();
      if (!Value(depth)) return false;
      Space();
      if (Eat('}')) return true;
      if (!Eat(',')) return false;
    }
  }

  bool Array(int depth) {
    if (depth > kMaxDepth) return false;
    ++at_;  // [
    Space();
    if (Eat(']')) return true;
    for (;;) {
      Space();
      if (!Value(depth)) return false;
      Space();
      if (Eat(']')) return true;
      if (!Eat(',')) return false;
    }
  }

  bool Number() {
    Eat('-');
    if (Eat('0')) {
      // no leading zeros
    } else if (!More() || Peek() < '1' || Peek() > '9' || !Digits()) {
      return false;
    }
    if (Eat('.') && !Digits()) return false;
    if (More() && (Peek() == 'e' || Peek() == 'E')) {
      ++at_;
      if (!Eat('+')) Eat('-');
      if (!Digits()) return false;
    }
    return true;
  }

  static bool Hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

  bool String() {
    ++at_;  // "
    while (More()) {
      auto c = static_cast<unsigned char>(Peek());
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c < 0x20) return false;  // control characters must be escaped
      if (c == '\\') {
        ++at_;
        if (!More()) return false;
        char e = Peek();
        ++at_;
        if (e == 'u') {
          for (int i = 0; i < 4; ++i, ++at_)
            if (!More() || !Hex(Peek())) return false;
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return false;
        }
        continue;
      }
      if (c < 0x80) {
        ++at_;
        continue;
      }
      if (!Utf8()) return false;
    }
    return false;  // no closing quote
  }

  // One multi-byte UTF-8 sequence: no overlong form, no surrogate, nothing past U+10FFFF.
  bool Utf8() {
    auto byte = [this](std::size_t i) { return static_cast<unsigned char>(s_[at_ + i]); };
    unsigned char c = byte(0);
    std::size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (s_.size() - at_ < n) return false;
    if (byte(1) < lo || byte(1) > hi) return false;
    for (std::size_t i = 2; i < n; ++i)
      if (byte(i) < 0x80 || byte(i) > 0xBF) return false;
    at_ += n;
    return true;
  }

  std::string_view s_;
  std::size_t at_ = 0;
};

}  // namespace

bool IsJsonText(std::string_view text) { return JsonCheck(text).Whole(); }

}  // namespace sessiond
