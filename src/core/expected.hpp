#pragma once
// A small expected<T, E>: the value or the reason it could not be produced.
// C++20 has no std::expected and boost::system::result wants error codes.
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace importwatch::core {

template <class E>
struct unexpected {
    E error;
};
template <class E>
unexpected(E) -> unexpected<E>;

inline unexpected<std::string> fail(std::string message) { return {std::move(message)}; }

template <class T, class E = std::string>
class expected {
public:
    expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    template <class G>
    expected(unexpected<G> u) : v_(std::in_place_index<1>, E(std::move(u.error))) {}

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& operator*() & { assert(has_value()); return std::get<0>(v_); }
    T const& operator*() const& { assert(has_value()); return std::get<0>(v_); }
    T&& operator*() && { assert(has_value()); return std::get<0>(std::move(v_)); }
    T* operator->() { assert(has_value()); return &std::get<0>(v_); }
    T const* operator->() const { assert(has_value()); return &std::get<0>(v_); }

    E const& error() const { assert(!has_value()); return std::get<1>(v_); }

private:
    std::variant<T, E> v_;
};

template <class E>
class expected<void, E> {
public:
    expected() = default;
    template <class G>
    expected(unexpected<G> u) : error_(E(std::move(u.error))), ok_(false) {}

    bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    E const& error() const { assert(!ok_); return error_; }

private:
    E error_{};
    bool ok_ = true;
};

} // namespace importwatch::core
