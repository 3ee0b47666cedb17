#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> split(const std::string &text) {
    std::istringstream in(text);
    std::vector<std::string> words;
    std::string w;
    while (in >> w) words.push_back(w);
    return words;
}

PyObject *sorted_unique(PyObject *, PyObject *args) {
    const char *text;
    if (!PyArg_ParseTuple(args, "s", &text)) return nullptr;
    std::vector<std::string> words = split(text);
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    PyObject *out = PyList_New(static_cast<Py_ssize_t>(words.size()));
    if (out == nullptr) return nullptr;
    for (size_t i = 0; i < words.size(); i++) {
        PyObject *s = PyUnicode_FromStringAndSize(words[i].data(), words[i].size());
        if (s == nullptr) { Py_DECREF(out); return nullptr; }
        PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), s);
    }
    return out;
}

PyObject *word_counts(PyObject *, PyObject *args) {
    const char *text;
    if (!PyArg_ParseTuple(args, "s", &text)) return nullptr;
    std::map<std::string, long> counts;
    for (const std::string &w : split(text)) counts[w]++;
    PyObject *out = PyDict_New();
    if (out == nullptr) return nullptr;
    for (const auto &kv : counts) {
        PyObject *v = PyLong_FromLong(kv.second);
        if (v == nullptr || PyDict_SetItemString(out, kv.first.c_str(), v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(out);
            return nullptr;
        }
        Py_DECREF(v);
    }
    return out;
}

PyMethodDef methods[] = {
    {"sorted_unique", sorted_unique, METH_VARARGS, "The distinct words of a text, sorted."},
    {"word_counts", word_counts, METH_VARARGS, "How often each word of a text occurs."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_words", nullptr, -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__words(void) { return PyModule_Create(&module); }
