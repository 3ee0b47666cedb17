// xarch native-compiler probe: templates, exceptions, RTTI and <iostream>.
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

namespace probe {

struct Shape {
    virtual ~Shape() = default;
    virtual double area() const = 0;
};
struct Square : Shape {
    explicit Square(double s) : side(s) {}
    double area() const override { return side * side; }
    double side;
};
struct Circle : Shape {
    explicit Circle(double r) : radius(r) {}
    double area() const override { return 3.0 * radius * radius; }
    double radius;
};

template <typename T, int N>
struct Power {
    static T of(T x) { return x * Power<T, N - 1>::of(x); }
};
template <typename T>
struct Power<T, 0> {
    static T of(T) { return T(1); }
};

template <typename Container>
auto checksum(const Container &c) -> typename Container::value_type {
    return std::accumulate(c.begin(), c.end(), typename Container::value_type{},
                           [](auto a, auto b) { return a * 31 + b; });
}

class ProbeError : public std::runtime_error {
  public:
    explicit ProbeError(int code) : std::runtime_error("probe error " + std::to_string(code)), code_(code) {}
    int code() const { return code_; }

  private:
    int code_;
};

int may_throw(int i) {
    if (i % 7 == 3)
        throw ProbeError(i);
    if (i % 11 == 5)
        throw std::out_of_range("index " + std::to_string(i));
    return i * 2;
}

}  // namespace probe

int main() {
    using namespace probe;
    std::vector<std::unique_ptr<Shape>> shapes;
    for (int i = 1; i <= 6; ++i) {
        if (i % 2)
            shapes.push_back(std::make_unique<Square>(i));
        else
            shapes.push_back(std::make_unique<Circle>(i));
    }
    std::map<std::string, double> by_type;
    for (const auto &s : shapes)
        by_type[typeid(*s).name()] += s->area();
    for (const auto &kv : by_type)
        std::cout << kv.first << " " << kv.second << "\n";
    int caught = 0, sum = 0;
    for (int i = 0; i < 40; ++i) {
        try {
            sum += may_throw(i);
        } catch (const ProbeError &e) {
            caught += e.code();
        } catch (const std::exception &e) {
            caught += static_cast<int>(std::string(e.what()).size());
        }
    }
    std::vector<long> v(50);
    std::iota(v.begin(), v.end(), 1L);
    std::ostringstream os;
    os << Power<long, 5>::of(3) << " " << checksum(v) << " " << caught << " " << sum;
    std::cout << os.str() << std::endl;
    Shape *p = shapes[1].get();
    std::cout << (dynamic_cast<Circle *>(p) != nullptr) << (dynamic_cast<Square *>(p) != nullptr)
              << std::endl;
    return 0;
}
