/* xarch native-compiler probe: a C extension module against the image's Python.h. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *fold(PyObject *self, PyObject *args) {
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq))
        return NULL;
    PyObject *it = PyObject_GetIter(seq);
    if (it == NULL)
        return NULL;
    unsigned long long h = 1469598103934665603ULL;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        long v = PyLong_AsLong(item);
        Py_DECREF(item);
        if (v == -1 && PyErr_Occurred()) {
            Py_DECREF(it);
            return NULL;
        }
        h = (h ^ (unsigned long long)v) * 1099511628211ULL;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    return PyLong_FromUnsignedLongLong(h);
}

static PyObject *describe(PyObject *self, PyObject *obj) {
    return PyUnicode_FromFormat("%s of size %zd", Py_TYPE(obj)->tp_name, PyObject_Length(obj));
}

static PyMethodDef methods[] = {
    {"fold", fold, METH_VARARGS, "FNV-1a of a sequence of ints"},
    {"describe", describe, METH_O, "type name and length"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "xarch_probe", NULL, -1, methods};

PyMODINIT_FUNC PyInit_xarch_probe(void) { return PyModule_Create(&module); }
