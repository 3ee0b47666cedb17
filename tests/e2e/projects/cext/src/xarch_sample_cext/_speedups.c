#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* fib(n) as an unsigned 64-bit integer (wraps past n = 93, like C does). */
static PyObject *fib(PyObject *self, PyObject *args) {
    unsigned long long n, a = 0, b = 1, t;
    if (!PyArg_ParseTuple(args, "K", &n)) return NULL;
    for (unsigned long long i = 0; i < n; i++) { t = a + b; a = b; b = t; }
    return PyLong_FromUnsignedLongLong(a);
}

/* The sum of the squares of a sequence of floats. */
static PyObject *sum_squares(PyObject *self, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "sum_squares() takes a sequence of numbers");
    if (seq == NULL) return NULL;
    double total = 0.0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (x == -1.0 && PyErr_Occurred()) { Py_DECREF(seq); return NULL; }
        total += x * x;
    }
    Py_DECREF(seq);
    return PyFloat_FromDouble(total);
}

/* "little" or "big", from the bytes of a 32-bit integer in memory. */
static PyObject *byteorder(PyObject *self, PyObject *unused) {
    uint32_t one = 1;
    return PyUnicode_FromString(*(unsigned char *)&one ? "little" : "big");
}

static PyMethodDef methods[] = {
    {"fib", fib, METH_VARARGS, "fib(n): the n-th Fibonacci number, modulo 2**64."},
    {"sum_squares", sum_squares, METH_O, "sum_squares(xs): sum of x*x."},
    {"byteorder", byteorder, METH_NOARGS, "The byte order the extension was compiled for."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
